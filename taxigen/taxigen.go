// Package taxigen generates synthetic New York taxi trips with the columns of
// the Azure MLOps v2 classical sample's taxi data: trips between NYC
// neighbourhoods, with road distances that follow from the coordinates,
// durations that follow from distance and time of day, and a metered fare
// as the label: a base, a rate per mile, a rate per minute in slow traffic,
// noise, and the flat fare from Manhattan to JFK. A linear model fits it
// with R² near 0.98 (the sample's data gives 0.91).
//
// As in the sample, which holds one month's trips, a trip ends in the month
// it starts in: dropoff_month always equals pickup_month (the sample's are
// also constant), so a linear model over both has dependent columns and
// gets the minimum-norm fit, as scikit-learn gives it. The day columns
// then differ only by the days a trip spans, which a linear model can
// rely on.
//
// Output depends only on the seed and the period: the same Spec writes the
// same bytes whatever the row count's chunking or the number of workers, and
// the first n rows of a longer file are the n rows of a shorter one. Files
// are written in a stream, in constant memory, by several goroutines.
package taxigen

import (
	"math"
	"time"
)

// Features are the feature columns, in the order of the sample's
// taxi-data.csv. Weekdays count from Monday = 0, as pandas does.
var Features = []string{
	"distance", "dropoff_latitude", "dropoff_longitude", "passengers",
	"pickup_latitude", "pickup_longitude", "store_forward", "vendor",
	"pickup_weekday", "pickup_month", "pickup_monthday", "pickup_hour", "pickup_minute", "pickup_second",
	"dropoff_weekday", "dropoff_month", "dropoff_monthday", "dropoff_hour", "dropoff_minute", "dropoff_second",
}

// Target is the label column: the metered fare in dollars.
const Target = "cost"

// Stream selects one of the independent sequences of trips a seed yields,
// so that the training, batch and request files hold different trips.
type Stream uint64

// The streams Generate writes.
const (
	StreamData    Stream = 1 // taxi-data.csv
	StreamBatch   Stream = 2 // taxi-batch.csv
	StreamRequest Stream = 3 // taxi-request.json
)

// When is the pickup or dropoff time of a trip, split as in the sample.
type When struct {
	Weekday  int // 0 = Monday
	Month    int // 1..12
	Monthday int // 1..31
	Hour     int
	Minute   int
	Second   int
}

// Trip is one generated trip, its values rounded as they are written
// (distance to 0.01 mile, coordinates to 6 decimals, cost to $0.50), so
// that Values gives exactly what a CSV reader parses back.
type Trip struct {
	Distance         float64 // road miles
	DropoffLatitude  float64
	DropoffLongitude float64
	Passengers       int // 1..7
	PickupLatitude   float64
	PickupLongitude  float64
	StoreForward     int // 1 when the meter stored the trip before sending it
	Vendor           int // 1 or 2
	Pickup, Dropoff  When
	Cost             float64 // fare in dollars
	DurationSeconds  int     // dropoff minus pickup
}

// Values appends the trip's features, in Features order, to dst.
func (t *Trip) Values(dst []float64) []float64 {
	return append(dst, t.Distance, t.DropoffLatitude, t.DropoffLongitude, float64(t.Passengers),
		t.PickupLatitude, t.PickupLongitude, float64(t.StoreForward), float64(t.Vendor),
		float64(t.Pickup.Weekday), float64(t.Pickup.Month), float64(t.Pickup.Monthday),
		float64(t.Pickup.Hour), float64(t.Pickup.Minute), float64(t.Pickup.Second),
		float64(t.Dropoff.Weekday), float64(t.Dropoff.Month), float64(t.Dropoff.Monthday),
		float64(t.Dropoff.Hour), float64(t.Dropoff.Minute), float64(t.Dropoff.Second))
}

// Spec fixes everything the generated trips depend on.
type Spec struct {
	// Seed selects the trips.
	Seed uint64
	// Start is the first day trips may start on (its date is taken in its
	// own location); the zero time means 2016-01-01.
	Start time.Time
	// Days is the length of the period pickups fall in; 0 means 366, the
	// whole of 2016. The sample's trips are all in January (Days 31).
	Days int
	// Workers is how many goroutines format rows; 0 means GOMAXPROCS.
	// It changes the speed only, never the output.
	Workers int
	// Format is the format Generate writes the data and batch files in:
	// CSV (also when empty) or Parquet. The trips are the same in both.
	Format Format
	// RequestRows is how many trips the request file holds; 0 means
	// RequestRows, the sample's two.
	RequestRows int
	// Drift shifts DriftedFeatures in every trip, as production data
	// drifts away from what a model was trained on; the others are
	// left as they are.
	Drift bool
}

// DriftedFeatures are the features Spec.Drift shifts: distance is 2.5
// times as long (a model trained on short trips now sees long ones), and
// every trip carries 2 more passengers, at most 7.
var DriftedFeatures = []string{"distance", "passengers"}

// shift applies Drift to a trip.
func (s Spec) shift(t *Trip) {
	if !s.Drift {
		return
	}
	t.Distance = round(t.Distance*2.5, 100)
	t.Passengers = min(7, t.Passengers+2)
}

// DefaultStart is the first pickup day when Spec.Start is zero.
var DefaultStart = time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC)

// DefaultDays is the period length when Spec.Days is zero.
const DefaultDays = 366

// maxTripSeconds bounds a trip's duration, so a dropoff is at most one day
// after its pickup.
const maxTripSeconds = 4 * 3600

// maxSpeed bounds a trip's average speed, in mph.
const maxSpeed = 45.0

// Bounding box of pickups and dropoffs, in degrees.
const (
	minLat, maxLat = 40.57, 40.89
	minLon, maxLon = -74.05, -73.72
)

// Miles per degree of latitude, and of longitude at New York's latitude.
const (
	milesPerLat = 69.05
	milesPerLon = 69.05 * 0.7575 // cos(40.75°)
)

// hotspot is a neighbourhood trips start in: a Gaussian around a centre.
type hotspot struct {
	lat, lon, sigma float64
	weight          int
	manhattan       bool
}

// Pickup neighbourhoods, roughly those street-hail taxis serve: northern
// Manhattan, Brooklyn, Queens and the Bronx.
var hotspots = []hotspot{
	{40.714, -73.957, 0.010, 12, false}, // Williamsburg
	{40.729, -73.951, 0.007, 5, false},  // Greenpoint
	{40.692, -73.988, 0.008, 9, false},  // Downtown Brooklyn
	{40.672, -73.979, 0.009, 6, false},  // Park Slope
	{40.687, -73.944, 0.010, 6, false},  // Bedford-Stuyvesant
	{40.697, -73.918, 0.009, 4, false},  // Bushwick
	{40.746, -73.945, 0.008, 8, false},  // Long Island City
	{40.765, -73.921, 0.010, 9, false},  // Astoria
	{40.751, -73.884, 0.010, 5, false},  // Jackson Heights
	{40.809, -73.948, 0.010, 12, true},  // Harlem
	{40.797, -73.939, 0.008, 9, true},   // East Harlem
	{40.790, -73.970, 0.008, 5, true},   // Upper West Side
	{40.845, -73.938, 0.011, 6, true},   // Washington Heights
	{40.818, -73.915, 0.012, 5, false},  // South Bronx
	{40.702, -73.800, 0.012, 2, false},  // Jamaica
}

// Airports, the destination of a few long trips.
var airports = [...]struct{ lat, lon float64 }{
	{40.6446, -73.7822}, // JFK
	{40.7730, -73.8710}, // LaGuardia
}

// Relative pickup frequency by hour of day.
var hourWeights = [24]int{35, 28, 22, 17, 13, 10, 16, 30, 42, 40, 36, 36, 39, 39, 43, 48, 50, 56, 62, 60, 53, 50, 48, 43}

// Typical speed in mph of a one-mile trip by hour of day; longer trips are
// faster.
var hourSpeeds = [24]float64{13, 14, 15, 15, 15, 14, 12, 9, 8.5, 9, 9.5, 9.5, 9.5, 9.5, 9.5, 9.5, 8.5, 8.5, 8.5, 9.5, 11, 12, 12, 12.5}

// Relative pickup frequency by weekday, Monday first; the largest is 1.
var weekdayWeights = [7]float64{0.82, 0.85, 0.87, 0.89, 0.96, 1, 0.88}

// Passenger counts in ten-thousandths, for 1..7 passengers.
var passengerWeights = [7]int{7808, 1098, 273, 125, 455, 240, 1}

// Fare, as New York's meter charges it: a base, then a rate per mile while
// the cab moves faster than 12 mph and one per minute while it is slower;
// Manhattan to JFK is a flat fare. Fares are rounded to the half dollar.
const (
	fareBase          = 2.5
	farePerMile       = 2.5
	farePerSlowMinute = 0.5
	slowSpeed         = 5.0  // mph, in slow traffic
	fareNoise         = 0.5  // standard deviation, dollars
	jfkFlatFare       = 52.0 // from Manhattan
)

// day is one calendar day of the period.
type day struct{ weekday, month, monthday int }

// calendar holds the days pickups and dropoffs fall on.
type calendar struct {
	days    []day // the period plus one day for late dropoffs
	pickups int   // days pickups may fall on
}

func (s Spec) calendar() *calendar {
	start := s.Start
	if start.IsZero() {
		start = DefaultStart
	}
	start = time.Date(start.Year(), start.Month(), start.Day(), 0, 0, 0, 0, time.UTC)
	n := s.Days
	if n <= 0 {
		n = DefaultDays
	}
	c := &calendar{days: make([]day, n+1), pickups: n}
	for i := range c.days {
		d := start.AddDate(0, 0, i)
		c.days[i] = day{weekday: (int(d.Weekday()) + 6) % 7, month: int(d.Month()), monthday: d.Day()}
	}
	return c
}

func (c *calendar) when(abs int64) When {
	d := c.days[abs/86400]
	sec := int(abs % 86400)
	return When{Weekday: d.weekday, Month: d.month, Monthday: d.monthday, Hour: sec / 3600, Minute: sec / 60 % 60, Second: sec % 60}
}

// rng is SplitMix64: a 64-bit counter through a mixing function. It is
// fast, its output is fixed by its definition, and any seed is good.
type rng struct{ s uint64 }

const golden = 0x9e3779b97f4a7c15

func mix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// newRNG starts the sequence of one chunk of one stream.
func newRNG(seed uint64, stream Stream, chunk int64) *rng {
	s := mix(seed + golden*uint64(stream))
	s = mix(s ^ (uint64(chunk)+1)*0xd6e8feb86659fd93)
	return &rng{s: s}
}

func (r *rng) next() uint64 {
	r.s += golden
	return mix(r.s)
}

// float is uniform in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) * 0x1p-53 }

// intn is uniform in [0, n) for 0 < n < 2^32.
func (r *rng) intn(n int) int { return int((r.next() >> 32) * uint64(n) >> 32) }

// quantileBits is log2 of the number of intervals of a quantile table.
const quantileBits = 12

// quantiles is a distribution's inverse distribution function at i/4096,
// i = 0..4096; random draws interpolate it linearly.
type quantiles []float64

// normalQuantiles returns the quantiles of exp(sigma*Z) with Z standard
// normal truncated at ±3.56 (the quantiles at 1/8192 and 1-1/8192 stand in
// for the infinite ends), or of Z itself when logNormal is false.
func normalQuantiles(sigma float64, logNormal bool) quantiles {
	n := 1 << quantileBits
	q := make(quantiles, n+1)
	for i := range q {
		p := float64(i) / float64(n)
		switch i {
		case 0:
			p = 0.5 / float64(n)
		case n:
			p = 1 - 0.5/float64(n)
		}
		q[i] = sigma * math.Sqrt2 * math.Erfinv(2*p-1)
		if logNormal {
			q[i] = math.Exp(q[i])
		}
	}
	return q
}

// The distributions trips draw from.
var (
	normal      = normalQuantiles(1, false)
	roadFactor  = normalQuantiles(0.8, true)  // spread of trip lengths
	speedFactor = normalQuantiles(0.25, true) // spread of speeds
)

// draw is a random value of the distribution q.
func (r *rng) draw(q quantiles) float64 {
	x := r.next()
	i := x >> (64 - quantileBits)
	f := float64(x<<quantileBits>>12) * 0x1p-52
	return q[i] + f*(q[i+1]-q[i])
}

// norm is standard normal, truncated at ±3.56.
func (r *rng) norm() float64 { return r.draw(normal) }

// pick draws an index with probability proportional to weights, whose sum
// is total.
func (r *rng) pick(weights []int, total int) int {
	x := r.intn(total)
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

var hotspotTotal, hourTotal, passengerTotal = func() (int, int, int) {
	var a, b, c int
	for _, h := range hotspots {
		a += h.weight
	}
	for _, w := range hourWeights {
		b += w
	}
	for _, w := range passengerWeights {
		c += w
	}
	return a, b, c
}()

var hotspotWeights = func() []int {
	w := make([]int, len(hotspots))
	for i, h := range hotspots {
		w[i] = h.weight
	}
	return w
}()

func inBox(lat, lon float64) bool {
	return lat >= minLat && lat <= maxLat && lon >= minLon && lon <= maxLon
}

func round(v, scale float64) float64 { return math.Round(v*scale) / scale }

// trip draws the next trip of r's sequence into t.
func (r *rng) trip(c *calendar, t *Trip) {
	// Where the trip starts.
	var plat, plon float64
	var h hotspot
	for {
		h = hotspots[r.pick(hotspotWeights, hotspotTotal)]
		plat, plon = h.lat+h.sigma*r.norm(), h.lon+h.sigma*1.3*r.norm()
		if inBox(plat, plon) {
			break
		}
	}
	// Where it ends: an airport, or a road distance in a random direction.
	detour := 1.2 + 0.25*r.float() // road miles per straight-line mile
	var dlat, dlon float64
	u := r.float()
	if u < 0.035 {
		a := airports[0]
		if u >= 0.02 {
			a = airports[1]
		}
		dlat, dlon = a.lat+0.003*r.norm(), a.lon+0.003*r.norm()
	} else {
		// A direction that stays in the box; failing that, a shorter trip.
		straight := min(30, 1.75*r.draw(roadFactor)) / detour
		for found := false; !found; straight /= 2 {
			for try := 0; try < 8 && !found; try++ {
				angle := 2 * math.Pi * r.float()
				dlat = plat + straight*math.Cos(angle)/milesPerLat
				dlon = plon + straight*math.Sin(angle)/milesPerLon
				found = inBox(dlat, dlon)
			}
		}
	}
	t.PickupLatitude, t.PickupLongitude = round(plat, 1e6), round(plon, 1e6)
	t.DropoffLatitude, t.DropoffLongitude = round(dlat, 1e6), round(dlon, 1e6)
	dy, dx := (dlat-plat)*milesPerLat, (dlon-plon)*milesPerLon
	road := math.Sqrt(dx*dx+dy*dy) * detour
	t.Distance = max(0.01, round(road, 100))

	// When it starts, a weekday-weighted day and an hour by demand, and how
	// long it takes: slower at rush hour, faster on longer trips. A trip
	// ends in the month it starts in, as in the sample, one month's trips;
	// this keeps the day columns' differences equal to the days a trip
	// spans.
	for {
		var d int
		for {
			d = r.intn(c.pickups)
			if r.float() < weekdayWeights[c.days[d].weekday] {
				break
			}
		}
		hour := r.pick(hourWeights[:], hourTotal)
		pickup := int64(d)*86400 + int64(hour*3600+r.intn(3600))
		speed := min(maxSpeed, hourSpeeds[hour]*(0.6+0.45*math.Sqrt(road))*r.draw(speedFactor))
		secs := road/speed*3600 + 20 + 100*r.float()
		t.DurationSeconds = int(min(maxTripSeconds, max(30, math.Round(secs))))
		t.Pickup, t.Dropoff = c.when(pickup), c.when(pickup+int64(t.DurationSeconds))
		if t.Pickup.Month == t.Dropoff.Month {
			break
		}
	}

	t.Passengers = 1 + r.pick(passengerWeights[:], passengerTotal)
	t.StoreForward = 0
	if r.float() < 0.0053 {
		t.StoreForward = 1
	}
	t.Vendor = 1
	if r.float() < 0.6627 {
		t.Vendor = 2
	}
	// The share of the time spent in slow traffic falls with the average
	// speed; the miles covered then are charged by the minute instead.
	hours := float64(t.DurationSeconds) / 3600
	slow := min(0.9, max(0, (18-road/hours)/12)) * hours
	fare := fareBase + farePerMile*max(0, road-slowSpeed*slow) + farePerSlowMinute*60*slow
	if u < 0.02 && h.manhattan {
		fare = jfkFlatFare
	}
	t.Cost = max(fareBase, round(fare+fareNoise*r.norm(), 2))
}
