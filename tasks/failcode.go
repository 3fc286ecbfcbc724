package tasks

// Fail codes seedbatch sets on a row itself; the provider's own codes (such
// as CONTENT_VIOLATION or GENERATION_FAILED) pass through unchanged.
const (
	// CodeInvalidRow: the row is not valid (a bad field, a stray quote, a
	// wrong number of fields); it was never submitted.
	CodeInvalidRow = "INVALID_ROW"
	// CodeDuplicateRow: the row is identical to an earlier row of its file
	// (every field but the id); it was not submitted, since it would be
	// billed twice for the same video.
	CodeDuplicateRow = "DUPLICATE_ROW"
	// CodeInvalidRequest: the provider refused the create as wrong (400);
	// nothing was created.
	CodeInvalidRequest = "INVALID_REQUEST"
	// CodeCreateUnknown: the create was sent and its answer does not prove
	// that nothing was created (the row is ambiguous).
	CodeCreateUnknown = "CREATE_OUTCOME_UNKNOWN"
	// CodeCreateInterrupted: a worker stopped while the row's create may have
	// been in flight (the row is ambiguous).
	CodeCreateInterrupted = "CREATE_INTERRUPTED"
	// CodeProviderError: the provider failed the task without a code, or the
	// create kept failing in ways that prove nothing was created.
	CodeProviderError = "PROVIDER_ERROR"
	// CodeTaskNotFound: the provider does not know the row's task.
	CodeTaskNotFound = "TASK_NOT_FOUND"
	// CodeNoResult: the provider reported a success without a result URL.
	CodeNoResult = "NO_RESULT_URLS"
	// CodeAnswerUnreadable: the provider's status answers about the row's
	// task could not be read (an unknown state, a resultJson that is not
	// JSON...) several times in a row.
	CodeAnswerUnreadable = "PROVIDER_ANSWER_UNREADABLE"
	// CodeBudget: the row is held because a budget of video seconds is spent.
	CodeBudget = "BUDGET"
	// CodeResultExpired: the video's URL expired before it was stored.
	CodeResultExpired = "RESULT_EXPIRED"
	// CodeDownloadTooLarge: the video is larger than the configured limit.
	CodeDownloadTooLarge = "DOWNLOAD_TOO_LARGE"
	// CodeDownloadFailed: the video was created but could not be stored.
	CodeDownloadFailed = "DOWNLOAD_FAILED"
	// CodeStorageFull: the video was created but the output directory's
	// file system is full (or over its quota); it is downloaded again,
	// not created again, once there is room.
	CodeStorageFull = "STORAGE_FULL"
	// CodeStorageReadOnly: the video was created but the output directory
	// cannot be written (a read-only file system, or no permission); it is
	// downloaded again, not created again, once it can be.
	CodeStorageReadOnly = "STORAGE_READONLY"
	// CodeTimedOut: the task was still not finished long after its create
	// (reconcile gave up on it).
	CodeTimedOut = "TIMED_OUT"
	// CodeCanceled: an operator canceled the batch before the row was
	// submitted.
	CodeCanceled = "CANCELED"
)

// CodeInsufficientCredits is the provider's own fail code (and error
// message) for an account that cannot pay: it stops the whole batch.
const CodeInsufficientCredits = "INSUFFICIENT_CREDITS"

// PossiblyBilled reports whether a failed row's provider task may have been
// billed as a success whose video seedbatch does not have, so that creating
// the row again could pay a second time for the same video. hadTask says
// whether the row had a task id, that is whether a create is known to have
// succeeded.
//
// It is true for a provider success whose video was not stored
// (NO_RESULT_URLS, RESULT_EXPIRED, DOWNLOAD_TOO_LARGE, DOWNLOAD_FAILED; a
// caller that can download a DOWNLOAD_FAILED row again does that instead),
// for status answers that could not be read (PROVIDER_ANSWER_UNREADABLE),
// and, after a create, for a task whose end was never learnt (TIMED_OUT,
// TASK_NOT_FOUND). It is false for the provider's own failures
// (CONTENT_VIOLATION, GENERATION_FAILED and every code it names), for
// creates refused (INVALID_REQUEST) and for rows never created: creating
// those again is what an operator's retry is for.
func PossiblyBilled(failCode string, hadTask bool) bool {
	switch failCode {
	case CodeNoResult, CodeResultExpired, CodeDownloadTooLarge, CodeDownloadFailed, CodeStorageFull, CodeStorageReadOnly,
		CodeAnswerUnreadable:
		return true
	case CodeTimedOut, CodeTaskNotFound:
		return hadTask
	}
	return false
}

// Redownloadable reports whether a failed row's video was made and only
// its storing failed, so that it is downloaded again from its result URLs
// (while they live) rather than created again: DOWNLOAD_FAILED,
// STORAGE_FULL and STORAGE_READONLY.
func Redownloadable(failCode string) bool {
	switch failCode {
	case CodeDownloadFailed, CodeStorageFull, CodeStorageReadOnly:
		return true
	}
	return false
}
