# Vaultwarden in a container without persistent disk: at start litewarden restores
# /data/db.sqlite3 from S3-compatible storage (R2, S3, B2, MinIO) and verifies it, then Vaultwarden
# runs under `litestream replicate -exec`. See README, "Running Vaultwarden with litewarden".
#
#   docker build -t vaultwarden-litewarden .
#   docker run --env-file vaultwarden.env -p 8080:80 vaultwarden-litewarden
#
# Multi-arch: docker buildx build --platform linux/amd64,linux/arm64 … (litewarden is compiled on
# the build machine for each target; no emulation needed for that stage).

ARG VAULTWARDEN_VERSION=1.37.2

# 1. litewarden as one binary for the image's architecture.
FROM --platform=$BUILDPLATFORM denoland/deno:2.9.6 AS build
ARG TARGETARCH
WORKDIR /src
COPY deno.json deno.lock main.ts ./
COPY src/ src/
COPY scripts/compile_all.sh scripts/
RUN DENO=deno sh scripts/compile_all.sh "linux-${TARGETARCH:-amd64}" \
  && cp dist/litewarden-linux-* /litewarden

# 2. Litestream v0.3.13, the official static build.
FROM litestream/litestream:0.3.13 AS litestream

# 3. The official Vaultwarden image (Debian), plus the two tools and the gate.
FROM vaultwarden/server:${VAULTWARDEN_VERSION}
COPY --from=litestream /usr/local/bin/litestream /usr/local/bin/litestream
COPY --from=build /litewarden /usr/local/bin/litewarden
COPY examples/litestream.yml /etc/litestream.yml
COPY --chmod=755 scripts/entrypoint.sh /usr/local/bin/litewarden-entrypoint.sh
COPY --chmod=755 examples/prune-cron.sh /usr/local/bin/litewarden-prune-cron.sh
ENV LITESTREAM_CONFIG=/etc/litestream.yml \
    LITEWARDEN_DB=/data/db.sqlite3 \
    LITEWARDEN_APP_COMMAND=/start.sh
CMD ["/usr/local/bin/litewarden-entrypoint.sh"]
