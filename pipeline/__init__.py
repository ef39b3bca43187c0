"""Moving ticks and signals between processes: dispatcher, worker protocol, shared state, signal ordering."""
