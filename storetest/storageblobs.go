package storetest

import (
	"testing"

	"github.com/wharfml/wharf"
)

// testStorageBlobs checks the Blob API's view of datastore files: a put
// records content and properties together, metadata is replaced alone, a
// job's write of the same path clears them, listing is by string prefix
// with a marker, and committing forgets the path's blocks.
func testStorageBlobs(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	if _, err := s.PutDatastore(ctx(t), &wharf.Datastore{Workspace: "ws", Name: "store", Type: wharf.DatastoreLocal}); err != nil {
		t.Fatal(err)
	}
	put := func(path, digest string, md map[string]string) {
		t.Helper()
		must(t, s.PutStorageBlob(ctx(t), &wharf.StorageBlob{
			DatastoreFile: wharf.DatastoreFile{Workspace: "ws", Datastore: "store", Path: path, Digest: digest, Kind: "file"},
			ContentType:   "text/csv", Metadata: md}))
	}
	put("LocalUpload/h1/data.csv", digestOf("a"), map[string]string{"name": "d"})
	put("LocalUpload/h1/data2.csv", digestOf("b"), nil)
	put("LocalUpload/h2/x.csv", digestOf("c"), nil)

	b, err := s.FindStorageBlob(ctx(t), "ws", "store", "LocalUpload/h1/data.csv")
	must(t, err)
	same(t, "found", []any{b.Digest, b.ContentType, b.Metadata}, []any{digestOf("a"), "text/csv", map[string]string{"name": "d"}})
	// The file is a datastore file too, and its content the workspace's.
	f, err := s.FindDatastoreFile(ctx(t), "ws", "store", "LocalUpload/h1/data.csv")
	must(t, err)
	same(t, "datastore file", f.Digest, digestOf("a"))
	missing, err := s.UnreferencedBlobs(ctx(t), "ws", []string{digestOf("a")})
	must(t, err)
	same(t, "referenced", missing, []string{})

	must(t, s.SetStorageBlobMetadata(ctx(t), "ws", "store", "LocalUpload/h1/data.csv", map[string]string{"upload_status": "completed"}))
	b, err = s.FindStorageBlob(ctx(t), "ws", "store", "LocalUpload/h1/data.csv")
	must(t, err)
	same(t, "metadata replaced, content type kept", []any{b.ContentType, b.Metadata}, []any{"text/csv", map[string]string{"upload_status": "completed"}})
	wantCode(t, s.SetStorageBlobMetadata(ctx(t), "ws", "store", "no/such", nil), wharf.ENOTFOUND)
	_, err = s.FindStorageBlob(ctx(t), "ws", "store", "no/such")
	wantCode(t, err, wharf.ENOTFOUND)

	list := func(prefix, marker string, limit int) []string {
		t.Helper()
		got, err := s.ListStorageBlobs(ctx(t), "ws", "store", prefix, marker, limit)
		must(t, err)
		names := []string{}
		for _, b := range got {
			names = append(names, b.Path)
		}
		return names
	}
	same(t, "string prefix", list("LocalUpload/h1/data", "", 10), []string{"LocalUpload/h1/data.csv", "LocalUpload/h1/data2.csv"})
	same(t, "after a marker", list("LocalUpload/", "LocalUpload/h1/data.csv", 10), []string{"LocalUpload/h1/data2.csv", "LocalUpload/h2/x.csv"})
	same(t, "limited", list("", "", 1), []string{"LocalUpload/h1/data.csv"})

	// A job writing the path replaces the content and drops the
	// properties the upload had.
	must(t, s.PutDatastoreFile(ctx(t), &wharf.DatastoreFile{Workspace: "ws", Datastore: "store", Path: "LocalUpload/h1/data.csv", Digest: digestOf("d"), Kind: "file"}))
	b, err = s.FindStorageBlob(ctx(t), "ws", "store", "LocalUpload/h1/data.csv")
	must(t, err)
	same(t, "after a job's write", []any{b.Digest, b.ContentType, b.Metadata}, []any{digestOf("d"), "", map[string]string{}})

	block := func(id, label string) {
		t.Helper()
		must(t, s.PutStorageBlock(ctx(t), &wharf.StorageBlock{Workspace: "ws", Datastore: "store", Path: "big.bin", ID: id, Digest: digestOf(label), Size: 3}))
	}
	block("QUFB", "x")
	block("QkJC", "y")
	block("QUFB", "z") // sent again: the later content counts
	blocks, err := s.StorageBlocks(ctx(t), "ws", "store", "big.bin")
	must(t, err)
	byID := map[string]string{}
	for _, b := range blocks {
		byID[b.ID] = b.Digest
	}
	same(t, "blocks", byID, map[string]string{"QUFB": digestOf("z"), "QkJC": digestOf("y")})
	put("big.bin", digestOf("zy"), nil)
	blocks, err = s.StorageBlocks(ctx(t), "ws", "store", "big.bin")
	must(t, err)
	same(t, "blocks after the commit", len(blocks), 0)
	wantCode(t, s.PutStorageBlock(ctx(t), &wharf.StorageBlock{Workspace: "ws", Datastore: "nope", Path: "a", ID: "QQ==", Digest: digestOf("x")}), wharf.ENOTFOUND)
}
