package wharf

import "strings"

// gpusBySize is how many GPUs one node of an Azure VM size has, for the
// sizes Azure ML training commonly runs on (lower case). A size not listed
// has none.
var gpusBySize = map[string]int{
	// NC: K80, then P100 (v2), V100 (v3), T4 (T4_v3), A100 (A100_v4), H100 (H100_v5).
	"standard_nc6": 1, "standard_nc12": 2, "standard_nc24": 4, "standard_nc24r": 4,
	"standard_nc6s_v2": 1, "standard_nc12s_v2": 2, "standard_nc24s_v2": 4, "standard_nc24rs_v2": 4,
	"standard_nc6s_v3": 1, "standard_nc12s_v3": 2, "standard_nc24s_v3": 4, "standard_nc24rs_v3": 4,
	"standard_nc4as_t4_v3": 1, "standard_nc8as_t4_v3": 1, "standard_nc16as_t4_v3": 1, "standard_nc64as_t4_v3": 4,
	"standard_nc24ads_a100_v4": 1, "standard_nc48ads_a100_v4": 2, "standard_nc96ads_a100_v4": 4,
	"standard_nc40ads_h100_v5": 1, "standard_nc80adis_h100_v5": 2,
	// ND: P40, then V100 (v2), A100 (v4), H100 (v5).
	"standard_nd6s": 1, "standard_nd12s": 2, "standard_nd24s": 4, "standard_nd24rs": 4,
	"standard_nd40rs_v2": 8, "standard_nd96asr_v4": 8, "standard_nd96amsr_a100_v4": 8,
	"standard_nd96isr_h100_v5": 8,
	// NV: M60, then (v3) M60 again.
	"standard_nv6": 1, "standard_nv12": 2, "standard_nv24": 4,
	"standard_nv12s_v3": 1, "standard_nv24s_v3": 2, "standard_nv48s_v3": 4,
}

// GPUsOfSize returns how many GPUs one node of an Azure VM size has (the
// name in any case), and whether the size is one Wharf knows to have
// GPUs. Every other size counts as a CPU size.
func GPUsOfSize(size string) (int, bool) {
	n, ok := gpusBySize[strings.ToLower(strings.TrimSpace(size))]
	return n, ok
}
