# syntax=docker/dockerfile:1
# Both binaries in one small image; the command picks the process
# (flotilla-producer serve | migrate | clock, flotilla-worker).

# --- build ---------------------------------------------------------------
FROM rust:1.88-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so a code change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY shared/Cargo.toml shared/Cargo.toml
COPY worker/Cargo.toml worker/Cargo.toml
COPY producer/Cargo.toml producer/Cargo.toml
COPY tests/Cargo.toml tests/Cargo.toml
RUN mkdir -p shared/src worker/src producer/src tests/src \
    && echo '' > shared/src/lib.rs && echo 'fn main() {}' > worker/src/main.rs \
    && echo '' > worker/src/lib.rs && echo 'fn main() {}' > producer/src/main.rs \
    && echo '' > tests/src/lib.rs \
    && cargo build --release -p flotilla-worker -p flotilla-producer || true
COPY . .
# Touch the sources so cargo rebuilds them over the stubs.
RUN touch shared/src/lib.rs worker/src/main.rs worker/src/lib.rs producer/src/main.rs \
    && cargo build --release --locked -p flotilla-worker -p flotilla-producer \
    && strip target/release/flotilla-worker target/release/flotilla-producer

# --- run -----------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates=20230311* \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin flotilla
COPY --from=build /src/target/release/flotilla-worker /src/target/release/flotilla-producer /usr/local/bin/
USER 10001
ENV LOG_FORMAT=json BIND=0.0.0.0
EXPOSE 8080 9090
# The Procfile's web process; Kubernetes and Railway set the command per service.
CMD ["flotilla-producer", "serve"]
