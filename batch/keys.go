package batch

import "strconv"

// The store's keys, all under its prefix. A batch's own keys share the
// hash tag {<batch>}, so every script that changes a batch touches one
// slot (Redis Cluster runs them unchanged); the budget's keys share
// {budget}.
//
//	<prefix>:batches                 ZSET batch id -> creation time (ms)
//	<prefix>:b:{<batch>}:meta        hash: the batch's record (Meta)
//	<prefix>:b:{<batch>}:counts      hash: state -> rows in it
//	<prefix>:b:{<batch>}:series      hash: minute -> rows finished, in flight
//	<prefix>:b:{<batch>}:job:<row>   hash: one row's record (Job)
//	<prefix>:b:{<batch>}:tasks       set of the batch's provider task ids
//	<prefix>:b:{<batch>}:sync        counter written to wait for replicas (expires)
//	<prefix>:task:<task id>          the row (holder) that owns a provider task
//	<prefix>:file:<sha256>           the batch a file's content was enqueued as
//	<prefix>:epoch                   hash: the Redis epoch's id and create count
//	<prefix>:{budget}:limits         hash: "total", "b:<batch>" -> seconds
//	<prefix>:{budget}:spent          hash: "total", "b:<batch>" -> seconds reserved
//	<prefix>:{budget}:held           set of "<batch>:<row>:<attempt>" reservations
//
// <prefix>:tasks and <prefix>:files are the task index and file claims of
// earlier versions, still read and cleaned.

func (s *Store) batchesKey() string        { return s.prefix + ":batches" }
func (s *Store) metaKey(b string) string   { return s.prefix + ":b:{" + b + "}:meta" }
func (s *Store) countsKey(b string) string { return s.prefix + ":b:{" + b + "}:counts" }
func (s *Store) seriesKey(b string) string { return s.prefix + ":b:{" + b + "}:series" }
func (s *Store) jobKey(b string, row int) string {
	return s.prefix + ":b:{" + b + "}:job:" + strconv.Itoa(row)
}
func (s *Store) batchTasksKey(b string) string { return s.prefix + ":b:{" + b + "}:tasks" }
func (s *Store) syncKey(b string) string       { return s.prefix + ":b:{" + b + "}:sync" }
func (s *Store) taskKey(taskID string) string  { return s.prefix + ":task:" + taskID }
func (s *Store) fileKey(hash string) string    { return s.prefix + ":file:" + hash }
func (s *Store) epochKey() string              { return s.prefix + ":epoch" }
func (s *Store) legacyTasksKey() string        { return s.prefix + ":tasks" }
func (s *Store) legacyFilesKey() string        { return s.prefix + ":files" }

// budgetKeys are the budget's limits, spent and held keys.
func (s *Store) budgetKeys() []string {
	p := s.prefix + ":{budget}:"
	return []string{p + "limits", p + "spent", p + "held"}
}

// budgetHeldPattern matches a batch's members of the held set.
func (s *Store) budgetHeldPattern(b string) string { return b + ":*" }
