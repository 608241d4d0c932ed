package arm_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/internal/storagetest"
)

// TestSDKUploadsLandInTheContainer: with the workspace's default datastore
// an Azure Blob container (Azurite) and, separately, an S3 bucket (moto),
// what the unchanged SDK uploads through Wharf's Blob API (a job's code
// folder and local input, a data asset's local folder) is in the
// container, listed and read by the plain SDK, byte for byte, at the
// LocalUpload/<hash>/ paths the SDK chose; the data asset's path names
// where.
func TestSDKUploadsLandInTheContainer(t *testing.T) {
	s := newSDKServer(t)
	azurite, moto := storagetest.StartAzurite(t), storagetest.StartMoto(t)
	az, s3c := storagetest.AzureClient(t, azurite), storagetest.S3Client(moto)
	if _, err := az.CreateContainer(t.Context(), "sdk", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("sdk")}); err != nil {
		t.Fatal(err)
	}
	owner := s.Principal("admin", [2]string{wharf.RoleOwner, "/"})
	stores := map[string]map[string]any{
		wharf.DatastoreAzureBlob: {"type": wharf.DatastoreAzureBlob, "account_name": storagetest.AzuriteAccount, "container_name": "sdk",
			"endpoint": azurite, "credentials": map[string]string{"account_key": storagetest.AzuriteKey}},
		wharf.DatastoreS3: {"type": wharf.DatastoreS3, "bucket": "sdk", "endpoint": moto, "region": storagetest.MotoRegion,
			"path_style": true, "credentials": map[string]string{"access_key_id": storagetest.MotoAccessKey, "secret_access_key": storagetest.MotoSecretKey}},
	}
	list := map[string]func() map[string]string{
		wharf.DatastoreAzureBlob: func() map[string]string { return storagetest.ListAzure(t, az, "sdk", "LocalUpload/") },
		wharf.DatastoreS3:        func() map[string]string { return storagetest.ListS3(t, s3c, "sdk", "LocalUpload/") },
	}
	hash := regexp.MustCompile(`LocalUpload/[0-9a-f]+/`)
	for _, typ := range []string{wharf.DatastoreAzureBlob, wharf.DatastoreS3} {
		body, _ := json.Marshal(stores[typ])
		if status, _, out := armCall(t, s.Server, owner, http.MethodPut, "/api/v1/workspaces/ws1/datastores/workspaceblobstore", string(body)); status != http.StatusOK {
			t.Fatalf("%s: make workspaceblobstore the container: %d %v", typ, status, out)
		}
		got := decode[struct {
			Sent map[string]string
			Data string
			// Content of its own for each, or the SDK would find the
			// first one's uploads by their hash and send nothing.
		}](t, s.runWith(t, append(s.env, "WHARF_SDK_UPLOAD_TAG="+typ), "uploads")["uploads"])
		listed := list[typ]()
		found := map[string]string{}
		for key, text := range listed {
			found[hash.ReplaceAllString(key, "")] = text
		}
		for rel, text := range got.Sent {
			if found[rel] != text {
				t.Errorf("%s: the container holds %q at LocalUpload/<hash>/%s, want %q; it holds %v", typ, found[rel], rel, text, listed)
			}
		}
		// The data asset's path says where in the container.
		i := strings.Index(got.Data, "/paths/")
		if !strings.Contains(got.Data, "/datastores/workspaceblobstore/paths/LocalUpload/") || i < 0 {
			t.Fatalf("%s: the data asset's path is %s", typ, got.Data)
		}
		p := strings.TrimSuffix(got.Data[i+len("/paths/"):], "/")
		var below bool
		for key := range listed {
			below = below || strings.HasPrefix(key, p+"/")
		}
		if !below {
			t.Errorf("%s: the container holds nothing below the data asset's path %s: %v", typ, p, listed)
		}
	}
}
