# CPU image that installs ecgtwin and runs its test suite.
#   docker build -t ecgtwin . && docker run --rm ecgtwin
# For GPU training use a CUDA base image and TORCH_SPEC="torch>=2.1".
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 WANDB_MODE=offline MPLBACKEND=Agg
WORKDIR /app
COPY . /app
RUN python -m pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0" \
 && python -m pip install -e ".[dev]"
CMD ["python", "-m", "pytest", "-q"]
