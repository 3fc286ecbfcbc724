package worker

import (
	"errors"
	"fmt"

	"github.com/seedbatch/seedbatch/seedance"
)

// unknownOutcome says, in an operator's words, why a create's outcome is
// unknown and what to do about it: the fail message of an ambiguous row.
func unknownOutcome(batchID string, err error) string {
	what := "the create failed after it was sent"
	var se *seedance.Error
	if errors.As(err, &se) {
		switch {
		case se.StatusCode == 0:
			what = "no answer came after the create was sent"
		case se.StatusCode/100 == 2 && se.Code != 0 && se.Code != 200:
			what = fmt.Sprintf("the provider answered HTTP %d with code %d after the create was sent", se.StatusCode, se.Code)
		case se.StatusCode/100 == 2:
			what = fmt.Sprintf("the provider answered HTTP %d without a usable task id", se.StatusCode)
		default:
			what = fmt.Sprintf("the provider answered HTTP %d after the create was sent", se.StatusCode)
		}
	}
	return fmt.Sprintf("%s; it may have created (and will bill) the task, so it was not sent again: "+
		"check, then `seedbatch retry %s --state ambiguous` (%v)", what, batchID, err)
}

// unreadableMessage is the fail message of a row whose task's status
// answers could not be read n times in a row.
func unreadableMessage(batchID, taskID string, n int, err error) string {
	return fmt.Sprintf("%d status reads in a row of task %s got answers that could not be read; "+
		"the task may have ended, and a success is billed: check it with the provider, then "+
		"`seedbatch retry %s --state failed --rebill` to create it again (%v)", n, taskID, batchID, err)
}
