package sandbox_test

import (
	"io/fs"
	"syscall"
)

func statUID(info fs.FileInfo) uint32 {
	return info.Sys().(*syscall.Stat_t).Uid
}
