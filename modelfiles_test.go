package wharf

import "testing"

func TestModelDirPath(t *testing.T) {
	for _, c := range []struct{ root, p, want string }{
		{"models/m/0a1b/model", "models/m/0a1b/model/MLmodel", "model/MLmodel"},
		{"models/m/0a1b/model", "models/m/0a1b/model/data/weights.bin", "model/data/weights.bin"},
		{"1/abc/artifacts/model", "1/abc/artifacts/model/MLmodel", "model/MLmodel"},
		{"models/m/0a1b/sklearn_regression_model.pkl", "models/m/0a1b/sklearn_regression_model.pkl", "sklearn_regression_model.pkl"},
		{"/models/m/0a1b/model/", "models/m/0a1b/model/x", "model/x"},
	} {
		if got := ModelDirPath(c.root, c.p); got != c.want {
			t.Errorf("ModelDirPath(%q, %q) = %q, want %q", c.root, c.p, got, c.want)
		}
	}
}
