package storetest

import (
	"testing"

	"github.com/wharfml/wharf"
)

// testDatastoreObjects checks the record of datastore objects' versions:
// a put replaces the version at a path and makes the content the
// workspace's, a list takes the path itself and what is below it but not
// a sibling sharing its prefix, and moving the datastore to another bucket
// or deleting it forgets them.
func testDatastoreObjects(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	if _, err := s.PutDatastore(ctx(t), &wharf.Datastore{Workspace: "ws", Name: "lake", Type: wharf.DatastoreS3, Bucket: "lake"}); err != nil {
		t.Fatal(err)
	}
	obj := func(path, etag, label string) *wharf.DatastoreObject {
		return &wharf.DatastoreObject{Workspace: "ws", Datastore: "lake", Path: path, ETag: etag, Size: int64(len(label)), Digest: digestOf(label)}
	}
	must(t, s.PutDatastoreObjects(ctx(t), []*wharf.DatastoreObject{obj("raw/a.csv", `"1"`, "a"), obj("raw/sub/b.csv", `"2"`, "b"),
		obj("raw2/c.csv", `"3"`, "c"), obj("raw", `"4"`, "d")}))
	must(t, s.PutDatastoreObjects(ctx(t), []*wharf.DatastoreObject{obj("raw/a.csv", `"5"`, "e")}))

	list := func(prefix string) []string {
		t.Helper()
		got, err := s.ListDatastoreObjects(ctx(t), "ws", "lake", prefix)
		must(t, err)
		out := []string{}
		for _, o := range got {
			out = append(out, o.Path+" "+o.ETag+" "+o.Digest)
		}
		return out
	}
	same(t, "at and below raw", list("raw/"), []string{"raw " + `"4" ` + digestOf("d"), "raw/a.csv " + `"5" ` + digestOf("e"),
		"raw/sub/b.csv " + `"2" ` + digestOf("b")})
	same(t, "one file", list("raw2/c.csv"), []string{"raw2/c.csv " + `"3" ` + digestOf("c")})
	same(t, "the whole datastore", len(list("")), 4)
	missing, err := s.UnreferencedBlobs(ctx(t), "ws", []string{digestOf("a"), digestOf("e")})
	must(t, err)
	same(t, "content the workspace references", missing, []string{})

	_, err = s.ListDatastoreObjects(ctx(t), "ws", "lake", "raw/../x")
	wantCode(t, err, wharf.EINVALID)

	// An update that keeps the bucket keeps the versions; one that
	// names another bucket forgets them.
	if _, err := s.PutDatastore(ctx(t), &wharf.Datastore{Workspace: "ws", Name: "lake", Type: wharf.DatastoreS3, Bucket: "lake",
		Description: "raw landing data"}); err != nil {
		t.Fatal(err)
	}
	same(t, "after an update in place", len(list("")), 4)
	if _, err := s.PutDatastore(ctx(t), &wharf.Datastore{Workspace: "ws", Name: "lake", Type: wharf.DatastoreS3, Bucket: "lake2"}); err != nil {
		t.Fatal(err)
	}
	same(t, "after the datastore moved to another bucket", list(""), []string{})
	must(t, s.PutDatastoreObjects(ctx(t), []*wharf.DatastoreObject{obj("raw/a.csv", `"6"`, "f")}))
	must(t, s.DeleteDatastore(ctx(t), "ws", "lake"))
	same(t, "after the datastore is deleted", list(""), []string{})
}
