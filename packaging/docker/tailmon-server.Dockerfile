# syntax=docker/dockerfile:1
# The Tailmon server image. Build from the repository's root:
#   docker build -f packaging/docker/tailmon-server.Dockerfile -t tailmon-server .
# Run:
#   docker run -d -p 3000:3000 -v tailmon-data:/var/lib/tailmon tailmon-server
# See docs/packaging.md.

# Build: the official Rust image, the toolchain the workspace asks for.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# Registry and target caches survive between builds (BuildKit); the binary
# is copied out of the cache within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tailmon-server-bin --bin tailmon-server \
 && install -D -m 0755 target/release/tailmon-server /out/tailmon-server \
 && install -d -m 0700 -o 65532 -g 65532 /out/data

# Run: distroless "cc" (glibc and libgcc, no shell, no package manager),
# as its unprivileged user `nonroot` (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/tailmon-server /usr/local/bin/tailmon-server
COPY --from=build --chown=65532:65532 /out/data /var/lib/tailmon
USER 65532:65532
ENV TAILMON_DATA_DIR=/var/lib/tailmon \
    TAILMON_LISTEN=0.0.0.0:3000 \
    TAILMON_NO_LOCAL_AGENT=1
VOLUME ["/var/lib/tailmon"]
EXPOSE 3000
# No HEALTHCHECK: the image has no shell nor HTTP client to run one.
# Orchestrators probe GET /healthz (alive) and GET /readyz (ready) instead.
ENTRYPOINT ["/usr/local/bin/tailmon-server"]
