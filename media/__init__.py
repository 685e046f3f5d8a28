"""Media on the server: the forwarding relay and recording (issue 4). Empty until then: p2p needs neither."""
