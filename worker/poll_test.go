package worker

import (
	"testing"
	"time"
)

func TestPlannedPollDelay(t *testing.T) {
	tests := []struct {
		name          string
		base          time.Duration
		inFlight, rpm int
		want          time.Duration
	}{
		{"few tasks keep the interval", 5 * time.Second, 100, 9500, 5 * time.Second},
		// 1000 tasks read every 5 s would be 12 000 a minute: stretch to 80% of 9500.
		{"full account is stretched", 5 * time.Second, 1000, 9500, 7894736842 * time.Nanosecond},
		{"at the edge", 5 * time.Second, 633, 9500, 5 * time.Second},
		{"no rate known", 5 * time.Second, 1000, 0, 5 * time.Second},
		{"compressed time", 100 * time.Millisecond, 50, 600 * 50, 125 * time.Millisecond},
	}
	for _, tt := range tests {
		got := plannedPollDelay(tt.base, tt.inFlight, tt.rpm)
		if got.Round(time.Millisecond) != tt.want.Round(time.Millisecond) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
		// However many tasks, their polls fit in the planned share of the rate.
		if tt.rpm > 0 {
			perMinute := float64(tt.inFlight) * float64(time.Minute) / float64(got)
			if perMinute > float64(tt.rpm)*pollShare+0.5 && got != tt.base {
				t.Errorf("%s: %.0f polls a minute over %d", tt.name, perMinute, tt.rpm)
			}
		}
	}
}
