"""Photos of incidents and scans of matters: uploaded in resumable pieces, stored once."""
