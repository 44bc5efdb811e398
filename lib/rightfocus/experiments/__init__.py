"""Run configurations, experiment groups per profile, run ids and the results store."""
