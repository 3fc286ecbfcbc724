package dashboard

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/tasks"
)

// TestSimulatedBatchesListedApart checks that the list page shows the
// batches of simulated runs in a list of their own, never among the real
// ones, even when a real batch has the same id.
func TestSimulatedBatchesListedApart(t *testing.T) {
	t.Parallel()
	var sim *batch.Store
	b := setup(t, func(c *Config) {
		// The test's own prefix and -sim, as a simulated run's.
		sim = batch.NewStore(c.Redis, strings.TrimSuffix(c.Queues.Submit, "-"+tasks.QueueSubmit)+"-sim")
		c.Simulated = sim
	})
	b.seed(t, "real-one", 20)
	b.seed(t, "both", 20)
	real := b.store
	b.store = sim
	b.seed(t, "sim-one", 20)
	b.seed(t, "both", 20)
	b.store = real

	w := b.do(t, http.MethodGet, "/", nil, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("list: %d\n%s", w.Code, w.Body)
	}
	body := w.Body.String()
	i := strings.Index(body, `id="simulated"`)
	if i < 0 {
		t.Fatalf("no list of simulated batches:\n%s", body)
	}
	realPart, simPart := body[:i], body[i:]
	realRows := batchRows(t, realPart)
	if _, ok := realRows["sim-one"]; ok || len(realRows) != 2 {
		t.Errorf("real list: %v, want real-one and both only", realRows)
	}
	simRows := regexp.MustCompile(`<tr data-batch="([^"]+)" data-simulated="true">`).FindAllStringSubmatch(simPart, -1)
	var ids []string
	for _, m := range simRows {
		ids = append(ids, m[1])
	}
	if strings.Join(ids, ",") != "both,sim-one" {
		t.Errorf("simulated list: %v, want both and sim-one, newest first", ids)
	}

	// Without simulated batches there is no such list.
	plain := setup(t, nil)
	plain.seed(t, "real-one", 20)
	if body := plain.do(t, http.MethodGet, "/", nil, nil).Body.String(); strings.Contains(body, `id="simulated"`) {
		t.Errorf("a list of simulated batches without any")
	}
}
