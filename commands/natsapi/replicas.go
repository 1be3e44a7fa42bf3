package natsapi

// StreamOption adjusts the JetStream streams and KV buckets this package creates (the
// integration stream and checkpoint bucket of the forwarder, the durable command
// streams).
type StreamOption func(*streamSettings)

type streamSettings struct {
	replicas int
}

// Replicas stores the streams and buckets on n servers of a JetStream cluster (R3:
// n = 3). 0 and 1 mean one copy. It must not exceed the cluster's size.
func Replicas(n int) StreamOption {
	return func(s *streamSettings) { s.replicas = n }
}

func applyStreamOptions(opts []StreamOption) streamSettings {
	var s streamSettings
	for _, o := range opts {
		if o != nil {
			o(&s)
		}
	}
	return s
}
