"""outpaint: automatic out-painting of images uploaded to an OSS bucket, on Function Compute."""

__version__ = "0.1.0"
GENERATED_BY = f"outpaint/{__version__}"
