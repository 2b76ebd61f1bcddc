SELECT stats_reset FROM {info}
