"""Reports over the job table (pandas): the monitoring views the CLI prints."""
