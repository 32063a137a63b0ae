# One image for every Tidings process: API, worker and beat differ only by command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TIDINGS_DATA_DIR=/var/lib/tidings
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY src ./src
RUN pip install --no-cache-dir -c constraints.txt . && useradd --system --home /var/lib/tidings tidings \
    && mkdir -p /var/lib/tidings && chown tidings /var/lib/tidings
USER tidings
EXPOSE 8000
CMD ["tidings", "serve", "--host", "0.0.0.0", "--port", "8000"]
