// Package tasks is seedbatch's shared vocabulary: asynq task type names and
// queues, task payloads, job states, the fail codes seedbatch sets and
// which of them may have been billed (PossiblyBilled), the job spec of one
// CSV row with its
// validation against the provider's rules, and the streaming CSV reader that
// turns a file into specs.
//
// It imports no other package of this module, so every other package can
// import it.
package tasks
