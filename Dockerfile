# syntax=docker/dockerfile:1
# Multi-stage build of the orderflow binary; the runtime image holds only the
# binary (migrations and the sample catalog are compiled in).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY examples ./examples
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked && cp target/release/orderflow /usr/local/bin/orderflow

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home orderflow
COPY --from=build /usr/local/bin/orderflow /usr/local/bin/orderflow
USER orderflow
ENTRYPOINT ["orderflow"]
CMD ["worker"]
