// Command ferretdb runs Earshot's local MongoDB wire-protocol server:
// embedded FerretDB v1 with its SQLite backend, bound to loopback; with
// -postgresql-url, the same server on its PostgreSQL backend instead (measured
// against SQLite by bench/serving-backends.sh).
//
// The upstream command needs a version file that its module zip lacks, so
// Earshot builds this small main around the embeddable package instead.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // -pprof serves Go's profiles
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	dataDir := flag.String("data", "data", "folder for the SQLite databases")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	synchronous := flag.String("synchronous", "normal",
		"SQLite's synchronous pragma: normal (WAL is synced at checkpoints, not at every commit) or full")
	heapMiB := flag.Int64("heap-mib", 1024,
		"collect garbage only when the heap nears this many MiB (0: Go's default, a collection each time the heap doubles)")
	pgURL := flag.String("postgresql-url", "", "a PostgreSQL URL: the postgresql backend instead of SQLite")
	pprofAddr := flag.String("pprof", "", "a loopback address (127.0.0.1:6060) to serve Go's profiles at /debug/pprof/; off when empty")
	flag.Parse()

	if *pprofAddr != "" {
		go func() {
			if err := http.ListenAndServe(*pprofAddr, nil); err != nil {
				fmt.Fprintf(os.Stderr, "ferretdb: -pprof %s: %v\n", *pprofAddr, err)
			}
		}()
	}

	// The serving store's upserts allocate a few KiB of short-lived garbage per
	// document; at Go's default pace the collector took a sixth of the server's
	// CPU in a profile, and allocation more. Collecting only near a fixed heap size measured 1.3-1.9x the upserts
	// per second here, for a heap of at most heap-mib. GOGC in the environment wins.
	if *heapMiB > 0 && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(*heapMiB << 20)
	}

	if *synchronous != "normal" && *synchronous != "full" {
		fmt.Fprintf(os.Stderr, "ferretdb: bad -synchronous %q: use normal or full\n", *synchronous)
		os.Exit(2)
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: bad -log-level %q: %v\n", *logLevel, err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	abs, err := filepath.Abs(*dataDir)
	if err == nil {
		err = os.MkdirAll(abs, 0o755)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: data folder %q: %v\n", *dataDir, err)
		os.Exit(2)
	}

	handler := "sqlite"
	if *pgURL != "" {
		handler = "postgresql"
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *listen},
		Logger:        logger,
		Handler:       handler,
		SQLiteURL:     "file:" + abs + "/?_pragma=synchronous(" + *synchronous + ")",
		PostgreSQLURL: *pgURL,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	logger.Info("listening", "uri", f.MongoDBURI(), "data", abs)
	if err := f.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		os.Exit(1)
	}
}
