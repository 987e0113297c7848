"""Amazon SageMaker launchers (optional ``sagemaker`` extra): training jobs, endpoints, batch
transform, experiment tracking. Nothing outside this package imports the SageMaker SDK or boto3;
the whole folder is removed when a project is generated without the SageMaker parts.
"""
