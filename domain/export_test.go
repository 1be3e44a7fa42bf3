package domain

// ParseEnvelope lets the external tests check that stored envelopes take the fast path.
var ParseEnvelope = parseEnvelope
