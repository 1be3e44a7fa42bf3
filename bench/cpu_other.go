//go:build !unix

package bench

// cpuSeconds is not measured on this system: every phase reports 0 CPU seconds.
func cpuSeconds() float64 { return 0 }
