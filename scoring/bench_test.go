package scoring

import (
	"fmt"
	"strings"
	"testing"
)

// azureRequest builds a taxi-shaped input_data request of n rows.
func azureRequest(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"input_data": [`)
	for r := range n {
		if r > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "[%.2f,40.%08d,-73.%08d,%d,40.%08d,-73.%08d,0,2,%d,1,19,21,3,56,1,1,19,21,21,57]",
			1+float64(r%50)/7, 10000000+r*7919, 90000000-r*104729, 1+r%4, 20000000+r*31, 80000000-r*17, r%7)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

func benchDecode(b *testing.B, body []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeAzure1Row(b *testing.B)    { benchDecode(b, azureRequest(1)) }
func BenchmarkDecodeAzure100Rows(b *testing.B) { benchDecode(b, azureRequest(100)) }

// BenchmarkScoreAzure1Row measures the whole per-request path around a
// model: decode, check against the taxi signature, convert, encode.
func BenchmarkScoreAzure1Row(b *testing.B) {
	body := azureRequest(1)
	sig, err := ParseMLflowSignature(taxiSignature())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		f, err := Decode(body)
		if err != nil {
			b.Fatal(err)
		}
		if err := Check(f, sig); err != nil {
			b.Fatal(err)
		}
		m, err := f.Float64Matrix(nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Encode(f.Format, Predictions{Float: []float64{m[0][0]}}, ModelInfo{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeV2OneRow(b *testing.B) {
	benchDecode(b, []byte(`{"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`))
}

func BenchmarkDecodeRecords100Rows(b *testing.B) {
	var s strings.Builder
	s.WriteString(`{"dataframe_records": [`)
	for r := range 100 {
		if r > 0 {
			s.WriteByte(',')
		}
		s.WriteByte('{')
		for c, name := range taxiColumns {
			if c > 0 {
				s.WriteByte(',')
			}
			fmt.Fprintf(&s, "%q: %d.%d", name, r, c)
		}
		s.WriteByte('}')
	}
	s.WriteString("]}")
	benchDecode(b, []byte(s.String()))
}
