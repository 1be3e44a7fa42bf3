FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/ticketd ./cmd/ticketd && CGO_ENABLED=0 go build -o /out/ticketctl ./cmd/ticketctl

FROM debian:12-slim
COPY --from=build /out/ticketd /out/ticketctl /usr/local/bin/
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ticketd"]
