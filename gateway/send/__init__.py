"""The send path shared by every entrance: dispatch (sync and queued), the upstream client, conversion tracking."""
