# llmgate's container image.
#
#   docker build -t llmgate .
#   docker run -p 4000:4000 -v ./config.yaml:/app/config.yaml:ro llmgate
#   docker run -p 4000:4000 llmgate --model ollama/llama3.2 --api_base http://ollama:11434
#
# With podman, add `--format docker` to keep the HEALTHCHECK (the OCI format has no place for
# it). Where no registry can be reached, `deploy/image/build-local` makes the Rust base image
# locally and passes it as RUST_IMAGE. docs/deployment.md ("Container image") says the rest.
#
# Two stages: a Rust build, then a runtime FROM scratch holding only the `llmgate` binary, the
# glibc libraries it links, a passwd entry for the non-root user and a writable /app/data. No
# shell, no package manager; the health check is the binary's own `llmgate healthcheck`.
# No CA bundle either: the upstream client and sqlx verify TLS against webpki-roots, which are
# compiled into the binary.

ARG RUST_IMAGE=rust:1.95-bookworm

FROM ${RUST_IMAGE} AS build
# cmake: pingora-core builds zlib-ng with it, and the rust image does not have it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The registry and target caches survive between builds (BuildKit, podman); the binary is
# copied out in the same step because a cache mount is not part of the image. The release
# profile (Cargo.toml) builds it without debug info and keeps the symbols, so a panic's
# backtrace still names functions.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p llmgate-server \
 && install -D -m 0755 target/release/llmgate /rootfs/llmgate
# The runtime's whole filesystem, in /rootfs: the shared libraries the binary links (ldd names
# them: glibc's libc, libm, libgcc_s and the loader; hostname lookups are built into glibc
# 2.36), the user 65532 (`nonroot`, as in distroless images), name lookup order and /tmp. And
# /app with /app/data, owned by that user: the SQLite database and the spend spill directory go
# beside the config by default, and /app/data is where a volume keeps them (docs/deployment.md).
RUN set -eu; \
    for lib in $(ldd /rootfs/llmgate | grep -o '/[^ ]*'); do \
      install -D "$lib" "/rootfs$lib"; \
    done; \
    mkdir -p /rootfs/etc /rootfs/tmp /app-skel/data; \
    echo 'root:x:0:0:root:/root:/sbin/nologin' >/rootfs/etc/passwd; \
    echo 'nonroot:x:65532:65532:nonroot:/app:/sbin/nologin' >>/rootfs/etc/passwd; \
    printf 'root:x:0:\nnonroot:x:65532:\n' >/rootfs/etc/group; \
    echo 'hosts: files dns' >/rootfs/etc/nsswitch.conf; \
    chmod 1777 /rootfs/tmp

FROM scratch
COPY --from=build /rootfs/ /
COPY --from=build --chown=65532:65532 /app-skel/ /app/
USER 65532:65532
WORKDIR /app
# The config LiteLLM's image users mount, and the port they publish. DATABASE_URL,
# LITELLM_MASTER_KEY, REDIS_URL and the providers' keys are read as LiteLLM reads them.
ENV PORT=4000 \
    CONFIG_FILE_PATH=/app/config.yaml
EXPOSE 4000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/llmgate", "healthcheck"]
ENTRYPOINT ["/llmgate"]
