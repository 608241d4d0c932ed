package arm_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestSDKReadsADataAssetBack creates a uri_folder data asset of a local
// folder through the SDK, which uploads it, and reads the folder back from
// the path data.get answers, through the Blob API with the datastore's
// signature, as the SDK's own download of an azureml:// URI does: every
// file comes back with what was sent.
func TestSDKReadsADataAssetBack(t *testing.T) {
	s := newSDKServer(t)
	got := decode[struct {
		Path       string
		Sent, Back map[string]string
	}](t, s.run(t, "data_readback")["data_readback"])
	if !strings.HasPrefix(got.Path, "azureml://") || !strings.Contains(got.Path, "/datastores/workspaceblobstore/paths/LocalUpload/") {
		t.Errorf("path: %s", got.Path)
	}
	if len(got.Sent) != 3 || fmt.Sprint(got.Back) != fmt.Sprint(got.Sent) {
		t.Errorf("read back %v, sent %v", got.Back, got.Sent)
	}
}

// TestSDKDownloadsAJobOutput downloads a command job's folder output with
// jobs.download(name, output_name=, download_path=): the SDK reads the
// run's outputs and their datastore URIs from run history and the data
// plane, and downloads the files below it through the Blob API, which
// shows a job's folder output as the blobs of its files, into
// named-outputs/<output>.
func TestSDKDownloadsAJobOutput(t *testing.T) {
	s := newSDKServer(t)
	got := decode[struct {
		Name  string
		Files map[string]string
	}](t, s.run(t, "download")["download"])
	want := map[string]string{"named-outputs/result/r2.txt": "0.91\n", "named-outputs/result/parts/1.txt": "first\n"}
	if fmt.Sprint(got.Files) != fmt.Sprint(want) {
		t.Errorf("job %s downloaded %v, want %v", got.Name, got.Files, want)
	}
}
