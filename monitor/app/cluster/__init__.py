"""Several daemons on one PostgreSQL: the job queue, the rules leader, the node."""
