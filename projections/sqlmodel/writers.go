package sqlmodel

import "errors"

// ErrOtherWriter is the error of a commit refused because the checkpoint in the
// database is not the one this model read: another model (another process, or a
// previous holder of ticketd's SQL lease) has written the tables since. Nothing of
// the refused batch is stored. The model cannot go on from there; open a new one,
// which reads the current checkpoint (Err reports it until then).
var ErrOtherWriter = errors.New("another process writes these tables")
