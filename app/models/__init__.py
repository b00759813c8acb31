"""Qt item models over sdk records: each keeps a list of detached records and updates in place."""
