# syntax=docker/dockerfile:1
# The Tailmon agent image. Build from the repository's root:
#   docker build -f packaging/docker/tailmon-agent.Dockerfile -t tailmon-agent .
# It reports the host it runs on only when it sees the host's processes and
# network (docker run --pid host --network host); see docs/packaging.md.

# Build: the official Rust image, the toolchain the workspace asks for.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tailmon-agent --bin tailmon-agent \
 && install -D -m 0755 target/release/tailmon-agent /out/tailmon-agent

# Run: distroless "cc" (glibc and libgcc, no shell, no package manager),
# as its unprivileged user `nonroot` (65532). The agent writes nothing.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/tailmon-agent /usr/local/bin/tailmon-agent
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tailmon-agent"]
