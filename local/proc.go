package local

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Process identifies a running job process well enough to find it again after
// a server restart. PIDs are recycled, so the PID alone could name an
// unrelated process by then; the kernel's start time of the process tells the
// two apart.
type Process struct {
	PID  int
	PGID int
	// StartTime is field 22 of /proc/<pid>/stat: clock ticks after boot
	// at which the process started. It never changes for a process and
	// two processes with the same PID cannot share it.
	StartTime uint64
}

// LookupProcess reads the process group and start time of pid from /proc.
// It returns an error satisfying errors.Is(err, fs.ErrNotExist) when no such
// process exists.
func LookupProcess(pid int) (Process, error) {
	if pid <= 0 {
		return Process{}, fmt.Errorf("local: invalid pid %d", pid)
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Process{}, fmt.Errorf("local: read process %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may itself hold
	// spaces and parentheses, so fields are counted from the last ')'.
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return Process{}, fmt.Errorf("local: malformed /proc/%d/stat", pid)
	}
	fields := bytes.Fields(data[end+1:])
	// fields[0] is field 3 (state); field n is fields[n-3].
	const pgidField, startField = 5, 22
	if len(fields) < startField-2 {
		return Process{}, fmt.Errorf("local: malformed /proc/%d/stat", pid)
	}
	pgid, err := strconv.Atoi(string(fields[pgidField-3]))
	if err != nil {
		return Process{}, fmt.Errorf("local: malformed process group in /proc/%d/stat", pid)
	}
	start, err := strconv.ParseUint(string(fields[startField-3]), 10, 64)
	if err != nil {
		return Process{}, fmt.Errorf("local: malformed start time in /proc/%d/stat", pid)
	}
	return Process{PID: pid, PGID: pgid, StartTime: start}, nil
}

// KillOrphan kills the process group of p, a job process left running by a
// previous server instance, if and only if p.PID still names the same process
// (same start time) and still leads group p.PGID. Anything else means the
// original process is gone and its PID may now belong to someone else, so
// nothing is signalled and killed is false.
//
// The group gets SIGKILL straight away: the attempt is already lost with the
// server that ran it, and recovery must end it for certain rather than wait
// on a grace period. The signal is delivered asynchronously; it cannot be
// caught or ignored.
//
// A group whose leader has exited (the kernel kills the leader with the
// server, through Pdeathsig) may still hold the job's other processes.
// Linux never hands out an ID that is still in use as a process group ID,
// so live members of group p.PGID whose leader is gone can only be the
// job's own: they are killed too.
func KillOrphan(p Process) (killed bool, err error) {
	if p.PID <= 0 || p.PGID <= 0 {
		return false, fmt.Errorf("local: invalid process %+v", p)
	}
	cur, err := LookupProcess(p.PID)
	if errors.Is(err, fs.ErrNotExist) {
		if p.PID != p.PGID || !groupHasLiveMember(p.PGID) {
			return false, nil
		}
		if err := syscall.Kill(-p.PGID, syscall.SIGKILL); err != nil {
			if errors.Is(err, syscall.ESRCH) {
				return false, nil
			}
			return false, fmt.Errorf("local: kill process group %d: %w", p.PGID, err)
		}
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if cur.StartTime != p.StartTime || cur.PGID != p.PGID {
		return false, nil
	}
	if err := syscall.Kill(-p.PGID, syscall.SIGKILL); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return false, nil // exited between the check and the kill
		}
		return false, fmt.Errorf("local: kill process group %d: %w", p.PGID, err)
	}
	return true, nil
}

// groupHasLiveMember reports whether a process that has not exited (not a
// zombie) is in the process group, by reading /proc.
func groupHasLiveMember(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		end := bytes.LastIndexByte(data, ')')
		if end < 0 {
			continue
		}
		fields := strings.Fields(string(data[end+1:]))
		// fields[0] is the state, fields[2] the process group.
		if len(fields) < 3 || fields[0] == "Z" || fields[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(fields[2]); err == nil && g == pgid && pid > 0 {
			return true
		}
	}
	return false
}

// groupAlive reports whether any process, zombies included, is still in the
// process group.
func groupAlive(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	// EPERM means a member exists that we may not signal; it still counts.
	return err == nil || errors.Is(err, syscall.EPERM)
}

// reapGroup collects the exit status of every exited child of this process
// in the group, so orphaned grandchildren handed to the server as subreaper
// do not linger as zombies. It must only run once the group leader has been
// waited for, or it could steal the leader's status from exec.Cmd.Wait.
func reapGroup(pgid int) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-pgid, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
	}
}

// Machine names this machine as it is now booted: its host name and the
// kernel's boot id, so that a process id recorded here is never taken
// for one on another machine, or on this one after a reboot.
func Machine() string {
	machineOnce.Do(func() {
		host, _ := os.Hostname()
		boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
		machine = host + "/" + strings.TrimSpace(string(boot))
	})
	return machine
}

var (
	machineOnce sync.Once
	machine     string
)
