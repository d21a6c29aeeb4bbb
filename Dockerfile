# syntax=docker/dockerfile:1
# Build: the release binary, dependencies cached in their own layer.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked \
    && strip target/release/sinch-operator

# Run: glibc and CA certificates only, as a non-root user, no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/sinch-operator /usr/local/bin/sinch-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/sinch-operator"]
CMD ["run"]
