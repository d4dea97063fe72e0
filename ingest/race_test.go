//go:build race

package ingest

// raceDetector is set in -race builds, which run real-time media several
// times slower.
const raceDetector = true
