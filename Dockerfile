# Aionix in a container: the single executable (`make binary` -> dist/aionix) on Debian
# bookworm-slim, run as a non-root user, with the data dir (database, master key, the first
# admin key's profile) on the /data volume.
#
#   make binary && podman build -t aionix .      (or docker build)
#   podman run -d --name aionix -p 127.0.0.1:53000:53000 -v aionix-data:/data aionix
#   podman exec aionix cat /data/credentials     # the first admin key (a CLI profile)
#
# deploy/compose.yaml runs one node with a named volume.
FROM debian:bookworm-slim

ARG AIONIX_UID=10001
# the server's user owns /data (mode 0700: the database and the master key are its alone)
RUN groupadd --system --gid "${AIONIX_UID}" aionix \
    && useradd --system --uid "${AIONIX_UID}" --gid aionix --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin aionix \
    && mkdir -p /data \
    && chown aionix:aionix /data \
    && chmod 0700 /data

# the binary is the server, the CLI (`aionix aio ...`) and the Python function runtime at once
COPY dist/aionix /usr/local/bin/aionix

ENV AIONIX_SECURITY_CREDENTIALS_FILE=/data/credentials
# the executable unpacks itself once per container into this private cache (not the /data
# volume); where it cannot, it runs from a temporary directory
ENV XDG_CACHE_HOME=/tmp/aionix-cache
USER aionix
WORKDIR /data
VOLUME ["/data"]
EXPOSE 53000

# /healthz answers 200 while the store is readable (503 otherwise); bash's /dev/tcp needs no
# HTTP client in the image
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/53000 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["/usr/local/bin/aionix"]
CMD ["--host", "0.0.0.0", "--port", "53000", "--data-dir", "/data"]
