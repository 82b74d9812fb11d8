package env_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestReadmeListsEveryVariable keeps the README's environment table and the
// code in step: every variable read through a Reader has a row, and every
// row is read somewhere.
func TestReadmeListsEveryVariable(t *testing.T) {
	const root = "../.." // the services module
	read := regexp.MustCompile(`\.(?:String|Text|Token|Port|Millis|Fraction|Host|Level)\("([A-Z_]+)"`)
	var inCode []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		for _, m := range read.FindAllSubmatch(src, -1) {
			inCode = append(inCode, string(m[1]))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var inReadme []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z_]+)` \\|").FindAllSubmatch(readme, -1) {
		inReadme = append(inReadme, string(m[1]))
	}
	slices.Sort(inCode)
	inCode = slices.Compact(inCode)
	slices.Sort(inReadme)
	if !slices.Equal(inCode, inReadme) {
		t.Fatalf("variables read by the code:\n  %v\nrows in README.md's environment table:\n  %v", inCode, inReadme)
	}
}
