package sqlstore

import (
	"math/rand/v2"
	"strconv"
)

// Words for generated run names. They only need to be short, inoffensive
// and distinct enough that a person can tell runs apart at a glance; the
// run id, not the name, identifies a run.
var (
	runNameAdjectives = []string{
		"agile", "amber", "bold", "brave", "bright", "calm", "clever", "crisp",
		"dapper", "eager", "fleet", "gentle", "glossy", "grand", "happy", "hardy",
		"honest", "humble", "jolly", "keen", "kind", "lively", "lucid", "mellow",
		"merry", "nimble", "noble", "placid", "polite", "proud", "quick", "quiet",
		"rare", "rustic", "sharp", "shiny", "silent", "sleek", "smooth", "snappy",
		"steady", "sunny", "swift", "tidy", "upbeat", "vivid", "warm", "wise",
	}
	runNameNouns = []string{
		"badger", "bass", "bear", "bee", "bird", "bison", "carp", "cat",
		"colt", "crab", "crane", "cub", "deer", "doe", "dove", "duck",
		"eagle", "eel", "elk", "falcon", "finch", "fox", "frog", "goat",
		"goose", "hare", "hawk", "heron", "horse", "ibis", "jay", "koi",
		"lark", "lynx", "mole", "moth", "newt", "otter", "owl", "panda",
		"perch", "pike", "robin", "seal", "shrew", "snail", "swan", "toad",
		"trout", "vole", "whale", "wolf", "wren", "yak",
	}
)

// generateRunName returns a readable name such as "brave-otter-417", the
// shape of name MLflow gives runs created without one.
func generateRunName() string {
	return runNameAdjectives[rand.IntN(len(runNameAdjectives))] + "-" +
		runNameNouns[rand.IntN(len(runNameNouns))] + "-" +
		strconv.Itoa(rand.IntN(1000))
}
