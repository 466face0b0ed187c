# The worker program (roles worker and bridge). confluent-kafka-go needs cgo.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -o /out/workers ./workers && CGO_ENABLED=1 go build -o /out/starter ./starter

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/workers /out/starter /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/workers"]
