"""Monitoring the model after it ships: feature and prediction drift, data quality, realised AUC.

stats (PSI and the KS test, checkpoint 2.8) -> features (the year's point-in-time features,
month by month, cached under <home>/monitoring) -> drift (monthly monitors and Evidently
reports) -> alarms (when a difference is an alarm: the unit of sampling is the day) ->
realised (delayed labels joined to logged predictions: realised ROC AUC per ISO week).
`import mlops_pipeline.monitoring` loads none of them; Evidently is imported only when a
report is written (it takes seconds).
"""
