package main

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/config"
	"github.com/seedbatch/seedbatch/objstore"
	"github.com/seedbatch/seedbatch/tasks"
)

// openObjects opens out_dir when it is a bucket URL; it returns nil for a
// local directory. Close what it returns.
func openObjects(ctx context.Context, cfg config.Config) (*objstore.Bucket, error) {
	if !objstore.IsURL(cfg.OutDir) {
		return nil, nil
	}
	b, err := objstore.Open(ctx, cfg.OutDir)
	if err != nil {
		return nil, fail(exitUsage, "out_dir: %v", err)
	}
	return b, nil
}

// closeObjects closes a bucket openObjects returned, if any.
func closeObjects(b *objstore.Bucket) {
	if b != nil {
		_ = b.Close()
	}
}

// writeResults writes dir/results.csv atomically, checking each recorded
// file (its size and sha256) in out_dir as it goes. When out_dir is a
// bucket, the rows link to their objects, and results.csv is also uploaded
// beside the batch's videos; where reports where it is.
func writeResults(ctx context.Context, store *batch.Store, id, dir string, cfg config.Config) (rep batch.ResultsReport, where string, err error) {
	where = filepath.Join(dir, resultsFile)
	objs, err := openObjects(ctx, cfg)
	if err != nil {
		return rep, where, err
	}
	opts := batch.ResultsOptions{Format: batch.FormatCSV, FilesDir: cfg.OutDir}
	if objs != nil {
		defer objs.Close()
		opts = batch.ResultsOptions{Format: batch.FormatCSV, Objects: objs, CheckObjects: true}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return rep, where, fmt.Errorf("results: %w", err)
	}
	f, err := os.CreateTemp(dir, ".results-*.csv")
	if err != nil {
		return rep, where, fmt.Errorf("results: %w", err)
	}
	defer os.Remove(f.Name())
	rep, err = store.WriteResults(context.WithoutCancel(ctx), f, id, opts)
	if err != nil {
		f.Close()
		return rep, where, err
	}
	if err := f.Close(); err != nil {
		return rep, where, fmt.Errorf("results: %w", err)
	}
	if err := os.Rename(f.Name(), where); err != nil || objs == nil {
		return rep, where, err
	}
	key := path.Join(tasks.SafeFileName(id), resultsFile)
	local, err := os.Open(where)
	if err != nil {
		return rep, where, fmt.Errorf("results: %w", err)
	}
	defer local.Close()
	if err := objs.Put(context.WithoutCancel(ctx), key, local); err != nil {
		return rep, where, fmt.Errorf("results: %w", err)
	}
	return rep, where + " and " + objs.String() + "/" + key, nil
}
