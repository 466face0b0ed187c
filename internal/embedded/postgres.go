package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	pgplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	"go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The schemas the PostgreSQL plugin's stores take, as named in the server's embedded
// schema files: the same ones temporal-sql-tool applies in a cluster's set-up.
const (
	pgMainSchema       = "postgresql/v12/temporal"
	pgVisibilitySchema = "postgresql/v12/visibility"
	// pgAdminDatabase is where databases are created from.
	pgAdminDatabase = "postgres"
	// pgDefaultDatabase is the main store's database when the URL names none.
	pgDefaultDatabase = "temporal"
	// namespaceRetention is how long closed workflows stay, as in the SQLite set-up.
	namespaceRetention = 24 * time.Hour
)

// postgresStores parses a postgres:// URL into the server's main and visibility stores,
// databases NAME and NAME_visibility on that server, and brings both to the schema version
// this server needs: created when missing, set up when new, updated when older. It is what
// temporal-sql-tool's create-database, setup-schema and update-schema do, run in process.
func postgresStores(rawURL string, logger log.Logger) (main, visibility *config.SQL, err error) {
	base, err := parsePostgresURL(rawURL)
	if err != nil {
		return nil, nil, err
	}
	main, visibility = base, new(config.SQL)
	*visibility = *base
	visibility.DatabaseName = base.DatabaseName + "_visibility"
	for _, s := range []struct {
		conf   *config.SQL
		schema string
	}{{main, pgMainSchema}, {visibility, pgVisibilitySchema}} {
		if err := prepareDatabase(s.conf, s.schema, logger); err != nil {
			return nil, nil, fmt.Errorf("Temporal database %s on %s: %w", s.conf.DatabaseName, s.conf.ConnectAddr, err)
		}
	}
	return main, visibility, nil
}

// parsePostgresURL reads postgres://user:password@host:port/database?attributes.
func parsePostgresURL(rawURL string) (*config.SQL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error quotes the whole URL, password and all; say only what is wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("Temporal database URL: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("Temporal database URL %q: want postgres://user:password@host:port/database", redact(u))
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("Temporal database URL %q names no host", redact(u))
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		name = pgDefaultDatabase
	}
	if strings.ContainsAny(name, "/\"' ;") {
		return nil, fmt.Errorf("Temporal database URL %q: %q is not a plain database name", redact(u), name)
	}
	attrs := map[string]string{}
	for k, v := range u.Query() {
		attrs[k] = v[len(v)-1]
	}
	pass, _ := u.User.Password()
	return &config.SQL{
		PluginName:        pgplugin.PluginNamePGX,
		DatabaseName:      name,
		ConnectAddr:       net.JoinHostPort(u.Hostname(), port),
		ConnectProtocol:   "tcp",
		User:              u.User.Username(),
		Password:          pass,
		ConnectAttributes: attrs,
		// The history service's shards write concurrently; PostgreSQL, unlike the SQLite
		// file, lets them.
		MaxConns:        20,
		MaxIdleConns:    20,
		MaxConnLifetime: time.Hour,
	}, nil
}

// redact drops the password from a URL shown in an error.
func redact(u *url.URL) string { return u.Redacted() }

// prepareDatabase creates conf's database when missing and applies schemaName's versions
// up to this server's, the way a cluster's admin-tools set-up does.
func prepareDatabase(conf *config.SQL, schemaName string, logger log.Logger) error {
	admin := *conf
	createErr := sqltool.DoCreateDatabase(&admin, pgAdminDatabase, logger)
	conn, err := sqltool.NewConnection(conf, logger)
	if err != nil {
		// A user who may not connect to the admin database can still use one made for it.
		return errors.Join(fmt.Errorf("connect: %w", err), createErr)
	}
	defer conn.Close()
	// Version tables only (version 0.0 when new); the versioned steps do the rest.
	setup := schema.NewSetupSchemaTask(conn, &schema.SetupConfig{InitialVersion: "0.0"}, logger)
	if err := setup.Run(); err != nil {
		return fmt.Errorf("set up schema version tables: %w", err)
	}
	update := schema.NewUpdateSchemaTask(conn, &schema.UpdateConfig{DBName: conf.DatabaseName, SchemaName: schemaName}, logger)
	if err := update.Run(); err != nil {
		return fmt.Errorf("update schema %s: %w", schemaName, err)
	}
	return nil
}

// registerNamespaces creates the namespaces missing on a running server through its
// frontend, as `temporal operator namespace create` does, waiting for the frontend to
// answer first.
func registerNamespaces(ctx context.Context, address string, names []string, logger *slog.Logger) error {
	if len(names) == 0 {
		return nil
	}
	nc, err := client.NewNamespaceClient(client.Options{HostPort: address, Logger: sdklog.NewStructuredLogger(logger.With("component", "namespace-setup"))})
	if err != nil {
		return fmt.Errorf("dial the frontend at %s: %w", address, err)
	}
	defer nc.Close()
	for _, name := range names {
		for {
			err := nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{
				Namespace:                        name,
				WorkflowExecutionRetentionPeriod: durationpb.New(namespaceRetention),
			})
			var exists *serviceerror.NamespaceAlreadyExists
			if err == nil || errors.As(err, &exists) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("register namespace %s: %w", name, err)
			case <-time.After(200 * time.Millisecond):
			}
		}
		// The namespace registry reads a new namespace through on its first miss; this
		// waits for the frontend to see it, so the first workflow call does not race it.
		for {
			_, err := nc.Describe(ctx, name)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("namespace %s not visible: %w", name, err)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}
