package domain

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The JSON Schemas in docs/schemas are generated here from the Go types, so that the
// published contract of every event is explicit and versioned, yet cannot drift from
// the code: TestSchemaFiles fails when a payload type changes and its file was not
// regenerated, and
//
//	UPDATE_SCHEMAS=1 go test ./domain -run Schema
//
// rewrites the files of the current schema versions. It refuses to rewrite one with a
// change that old events of that version would not satisfy (a removed or retyped
// property, a new required one): that change needs a new schema version and an
// upcaster (registry.go), and the old version's file then stays as it is.
//
// The rules are those of encoding/json, which writes the events: json tags name the
// properties; a property is required unless omitempty can drop it (empty strings,
// numbers, booleans, slices, maps, nil pointers) or omitzero is set or it comes from
// an embedded pointer; embedded structs are flattened with encoding/json's precedence
// rules; a slice, map or pointer without omitempty may be null. time.Time is an RFC
// 3339 string, Duration a Go duration string ("4h0m0s"). Descriptions are the doc
// comments of the types and fields, and a string type with typed constants (Channel,
// Direction, Status) gets them as its enum. Unknown properties are allowed: adding an
// optional field keeps the schema version, so consumers must tolerate new fields.

const (
	schemaDir     = "../docs/schemas"
	schemaDialect = "https://json-schema.org/draft/2020-12/schema"
	schemaUpdate  = "UPDATE_SCHEMAS=1 go test ./domain -run Schema"
)

// TestSchemaFiles compares the generated schemas with the files on disk, or rewrites
// them when UPDATE_SCHEMAS=1.
func TestSchemaFiles(t *testing.T) {
	generated, err := generateSchemas()
	if err != nil {
		t.Fatal(err)
	}
	update := os.Getenv("UPDATE_SCHEMAS") == "1"
	if update {
		if err := os.MkdirAll(schemaDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range slices.Sorted(mapKeys(generated)) {
		want := generated[name]
		path := filepath.Join(schemaDir, name)
		have, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if bytes.Equal(have, want) {
			continue
		}
		var problems []string
		if have != nil {
			problems, err = schemaBreaks(have, want)
			if err != nil {
				t.Errorf("%s: %v", path, err)
				continue
			}
		}
		switch {
		case len(problems) > 0:
			t.Errorf("%s: the Go type changed in a way events already stored under this schema version do not satisfy:\n  %s\n"+
				"Give the event type a new schema version with an upcaster from this one (domain/registry.go), then run %s:\n"+
				"the new version gets its own file and this one stays.", path, strings.Join(problems, "\n  "), schemaUpdate)
		case update:
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s", path)
		case have == nil:
			t.Errorf("%s is missing: run %s", path, schemaUpdate)
		default:
			t.Errorf("%s is out of date with its Go type: run %s and commit the result", path, schemaUpdate)
		}
	}
	checkOtherSchemaFiles(t, generated)
}

// checkOtherSchemaFiles accepts, besides the generated files, only the files of older
// schema versions, which are frozen; a version that still has an upcaster must keep
// its file, since events of that version can still be read.
func checkOtherSchemaFiles(t *testing.T, generated map[string][]byte) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(schemaDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	pattern := regexp.MustCompile(`^(.+)\.v([0-9]+)\.json$`)
	for _, f := range files {
		name := filepath.Base(f)
		present[name] = true
		if generated[name] != nil {
			continue
		}
		m := pattern.FindStringSubmatch(name)
		if m == nil {
			t.Errorf("%s: not a schema file name (<event type>.v<schema version>.json)", f)
			continue
		}
		version, _ := strconv.Atoi(m[2])
		k, ok := registry[m[1]]
		switch {
		case !ok:
			t.Errorf("%s: %s is not a registered event type", f, m[1])
		case version > k.version:
			t.Errorf("%s: version %d is newer than the current schema version %d of %s", f, version, k.version, m[1])
		}
	}
	for eventType, k := range registry {
		for v := 1; v < k.version; v++ {
			name := schemaFileName(eventType, v)
			if _, readable := k.upcasters[v]; readable && !present[name] {
				t.Errorf("%s is missing: events of %s version %d can still be read, so its schema stays published", name, eventType, v)
			}
		}
	}
}

// TestSchemasAgreeWithEncodingJSON checks the generator against encoding/json itself:
// the zero value of every type writes exactly the required properties, and a value with
// every field set writes exactly the listed properties, each matching its schema.
func TestSchemasAgreeWithEncodingJSON(t *testing.T) {
	docs, err := loadSchemaDocs()
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]reflect.Type{"envelope": reflect.TypeFor[Event]()}
	for _, eventType := range EventTypes() {
		p, err := payloadZero(eventType)
		if err != nil {
			t.Fatal(err)
		}
		types[eventType] = reflect.TypeOf(p)
	}
	for name, typ := range types {
		t.Run(name, func(t *testing.T) {
			g := schemaGenerator{docs: docs}
			node, err := g.typeSchema(typ, false)
			if err != nil {
				t.Fatal(err)
			}
			schema := roundTrip(t, node)
			for _, sample := range []struct {
				mode  sampleMode
				value reflect.Value
			}{
				{zeroSample, reflect.New(typ).Elem()},
				{fullSample, fullValue(typ, docs)},
			} {
				b, err := json.Marshal(sample.value.Interface())
				if err != nil {
					t.Fatal(err)
				}
				var doc any
				if err := json.Unmarshal(b, &doc); err != nil {
					t.Fatal(err)
				}
				for _, problem := range checkSample(schema, doc, sample.mode, "$") {
					t.Errorf("%s sample %s: %s", sample.mode, b, problem)
				}
			}
		})
	}
}

// generateSchemas returns every schema file's content by file name.
func generateSchemas() (map[string][]byte, error) {
	docs, err := loadSchemaDocs()
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	g := schemaGenerator{docs: docs}
	envelope, err := g.typeSchema(reflect.TypeFor[Event](), false)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	props := envelope["properties"].(schemaProperties)
	for i := range props {
		if props[i].name == "data" {
			// json.RawMessage could hold anything; here it is always a payload object.
			props[i].schema = schemaNode{
				"description": "The payload, a JSON object: its schema is <type>.v<schema_version>.json in this folder.",
				"type":        "object",
			}
		}
	}
	envelope["$schema"] = schemaDialect
	envelope["title"] = "Event envelope, version 1"
	envelope["$comment"] = generatedComment("Event")
	if out["envelope.v1.json"], err = encodeSchema(envelope); err != nil {
		return nil, err
	}
	for _, eventType := range EventTypes() {
		p, err := payloadZero(eventType)
		if err != nil {
			return nil, err
		}
		typ := reflect.TypeOf(p)
		node, err := g.typeSchema(typ, false)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", eventType, err)
		}
		version := CurrentSchemaVersion(eventType)
		node["$schema"] = schemaDialect
		node["title"] = fmt.Sprintf("%s, schema version %d", eventType, version)
		node["$comment"] = generatedComment(typ.Name())
		if out[schemaFileName(eventType, version)], err = encodeSchema(node); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func schemaFileName(eventType string, version int) string {
	return fmt.Sprintf("%s.v%d.json", eventType, version)
}

func generatedComment(goType string) string {
	return fmt.Sprintf("Generated from domain.%s by domain/schema_test.go; do not edit: %s rewrites it.", goType, schemaUpdate)
}

// schemaNode is one JSON Schema object. It is written with its keywords in a fixed
// order, so that the files read well and diff cleanly.
type schemaNode map[string]any

var keywordOrder = []string{"$schema", "title", "description", "$comment", "type", "format", "contentEncoding",
	"enum", "minimum", "properties", "required", "additionalProperties", "items", "minItems", "maxItems"}

func (n schemaNode) MarshalJSON() ([]byte, error) {
	keys := slices.Collect(func(yield func(string) bool) {
		for k := range n {
			if !yield(k) {
				return
			}
		}
	})
	rank := func(k string) int {
		if i := slices.Index(keywordOrder, k); i >= 0 {
			return i
		}
		return len(keywordOrder)
	}
	sort.Slice(keys, func(i, j int) bool {
		if ri, rj := rank(keys[i]), rank(keys[j]); ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	return marshalObject(len(keys), func(i int) (string, any) { return keys[i], n[keys[i]] })
}

// schemaProperties are an object's properties in the order of the Go fields.
type schemaProperties []schemaProperty

type schemaProperty struct {
	name   string
	schema schemaNode
}

func (ps schemaProperties) MarshalJSON() ([]byte, error) {
	return marshalObject(len(ps), func(i int) (string, any) { return ps[i].name, ps[i].schema })
}

func marshalObject(n int, entry func(i int) (string, any)) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i := range n {
		k, v := entry(i)
		if i > 0 {
			b.WriteByte(',')
		}
		key, err := marshalPlain(k)
		if err != nil {
			return nil, err
		}
		value, err := marshalPlain(v)
		if err != nil {
			return nil, err
		}
		b.Write(key)
		b.WriteByte(':')
		b.Write(value)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshalPlain is json.Marshal without the HTML escaping of <, > and &, which would
// make descriptions such as "reply -> message" unreadable in the files.
func marshalPlain(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func encodeSchema(n schemaNode) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// schemaGenerator builds schemas by reflection.
type schemaGenerator struct {
	docs schemaDocs
	path []reflect.Type // struct types being described, to refuse recursive types
}

var (
	timeType          = reflect.TypeFor[time.Time]()
	durationType      = reflect.TypeFor[Duration]()
	rawMessageType    = reflect.TypeFor[json.RawMessage]()
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	domainPackage     = reflect.TypeFor[Event]().PkgPath()
)

// typeSchema describes the JSON encoding/json writes for a value of type t; nullable
// adds null to its types (a nil slice, map or pointer that is not omitted).
func (g *schemaGenerator) typeSchema(t reflect.Type, nullable bool) (schemaNode, error) {
	typeName := func(name string) any {
		if nullable {
			return []any{name, "null"}
		}
		return name
	}
	switch t {
	case timeType:
		return schemaNode{"type": typeName("string"), "format": "date-time"}, nil
	case durationType:
		return schemaNode{"type": typeName("string"), "description": `A duration in Go's syntax, as Go writes it: "4h0m0s", "1h30m0s", "15m0s".`}, nil
	case rawMessageType:
		return schemaNode{}, nil
	}
	if t.Kind() == reflect.Pointer {
		return g.typeSchema(t.Elem(), nullable)
	}
	if t.Implements(marshalerType) || reflect.PointerTo(t).Implements(marshalerType) ||
		t.Implements(textMarshalerType) || reflect.PointerTo(t).Implements(textMarshalerType) {
		return nil, fmt.Errorf("%v writes its own JSON: add a rule for it to typeSchema in domain/schema_test.go", t)
	}
	n := schemaNode{}
	if d := g.docs.typeDoc(t); d != "" {
		n["description"] = d
	}
	switch t.Kind() {
	case reflect.Bool:
		n["type"] = typeName("boolean")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n["type"] = typeName("integer")
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n["type"], n["minimum"] = typeName("integer"), 0
	case reflect.Float32, reflect.Float64:
		n["type"] = typeName("number")
	case reflect.String:
		n["type"] = typeName("string")
		if values := g.docs.enumOf(t); len(values) > 0 {
			if nullable {
				values = append(values, nil)
			}
			n["enum"] = values
		}
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			n["type"], n["contentEncoding"] = typeName("string"), "base64"
			break
		}
		items, err := g.typeSchema(t.Elem(), nullableKind(t.Elem()))
		if err != nil {
			return nil, err
		}
		n["type"], n["items"] = typeName("array"), items
		if t.Kind() == reflect.Array {
			n["minItems"], n["maxItems"] = t.Len(), t.Len()
		}
	case reflect.Map:
		switch t.Key().Kind() {
		case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		default:
			return nil, fmt.Errorf("%v: map keys of kind %v have no rule", t, t.Key().Kind())
		}
		values, err := g.typeSchema(t.Elem(), nullableKind(t.Elem()))
		if err != nil {
			return nil, err
		}
		n["type"], n["additionalProperties"] = typeName("object"), values
	case reflect.Struct:
		if slices.Contains(g.path, t) {
			return nil, fmt.Errorf("%v contains itself: recursive types have no rule", t)
		}
		g.path = append(g.path, t)
		defer func() { g.path = g.path[:len(g.path)-1] }()
		n["type"] = typeName("object")
		var props schemaProperties
		var required []any
		for _, f := range jsonFields(t) {
			fieldSchema, err := g.fieldSchema(f)
			if err != nil {
				return nil, fmt.Errorf("%v.%s: %w", f.owner, f.goName, err)
			}
			props = append(props, schemaProperty{f.name, fieldSchema})
			if f.required() {
				required = append(required, f.name)
			}
		}
		if len(props) > 0 {
			n["properties"] = props
		}
		if len(required) > 0 {
			n["required"] = required
		}
	default:
		return nil, fmt.Errorf("%v: values of kind %v have no rule", t, t.Kind())
	}
	return n, nil
}

func (g *schemaGenerator) fieldSchema(f jsonField) (schemaNode, error) {
	nullable := !f.omittable() && nullableKind(f.typ)
	var n schemaNode
	if f.quoted {
		// ",string" writes the number or boolean inside a JSON string.
		n = schemaNode{"type": "string"}
		if nullable {
			n["type"] = []any{"string", "null"}
		}
	} else {
		var err error
		if n, err = g.typeSchema(f.typ, nullable); err != nil {
			return nil, err
		}
	}
	if d := g.docs.fieldDoc(f.owner, f.goName); d != "" {
		n["description"] = d
	}
	return n, nil
}

// nullableKind reports whether encoding/json writes a nil value of t as null.
func nullableKind(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		return true
	}
	return false
}

// jsonField is a property of a struct as encoding/json sees it.
type jsonField struct {
	name       string
	goName     string
	owner      reflect.Type // the struct that declares the field
	typ        reflect.Type
	index      []int
	depth      int
	tagged     bool
	omitEmpty  bool
	omitZero   bool
	quoted     bool
	viaPointer bool // promoted through an embedded pointer, so absent when it is nil
}

// omittable reports whether encoding/json may leave the field out.
func (f jsonField) omittable() bool {
	if f.omitZero {
		return true
	}
	if !f.omitEmpty {
		return false
	}
	switch f.typ.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.String, reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface:
		return true
	case reflect.Array:
		return f.typ.Len() == 0
	}
	return false // omitempty never drops a struct, time.Time included
}

func (f jsonField) required() bool { return !f.viaPointer && !f.omittable() }

// jsonFields lists the properties of struct type t in field order, with embedded
// structs flattened and name conflicts resolved as encoding/json does: the shallowest
// field wins, then the only tagged one at that depth; otherwise none.
func jsonFields(t reflect.Type) []jsonField {
	var all []jsonField
	var walk func(t reflect.Type, index []int, depth int, viaPointer bool, path []reflect.Type)
	walk = func(t reflect.Type, index []int, depth int, viaPointer bool, path []reflect.Type) {
		for i := range t.NumField() {
			sf := t.Field(i)
			if sf.Anonymous {
				ft := sf.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if !sf.IsExported() && ft.Kind() != reflect.Struct {
					continue
				}
			} else if !sf.IsExported() {
				continue
			}
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			ft, isPointer := sf.Type, false
			if ft.Name() == "" && ft.Kind() == reflect.Pointer {
				ft, isPointer = ft.Elem(), true
			}
			fieldIndex := append(slices.Clone(index), i)
			if name == "" && sf.Anonymous && ft.Kind() == reflect.Struct {
				if !slices.Contains(path, ft) {
					walk(ft, fieldIndex, depth+1, viaPointer || isPointer, append(path, ft))
				}
				continue
			}
			f := jsonField{name: name, goName: sf.Name, owner: t, typ: sf.Type, index: fieldIndex, depth: depth,
				tagged: name != "", viaPointer: viaPointer}
			if f.name == "" {
				f.name = sf.Name
			}
			for _, o := range strings.Split(opts, ",") {
				switch o {
				case "omitempty":
					f.omitEmpty = true
				case "omitzero":
					f.omitZero = true
				case "string":
					switch ft.Kind() {
					case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
						reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
						reflect.Float32, reflect.Float64, reflect.String:
						f.quoted = true
					}
				}
			}
			all = append(all, f)
		}
	}
	walk(t, nil, 0, false, []reflect.Type{t})

	byName := map[string][]jsonField{}
	for _, f := range all {
		byName[f.name] = append(byName[f.name], f)
	}
	var out []jsonField
	for _, fields := range byName {
		shallowest := slices.MinFunc(fields, func(a, b jsonField) int { return a.depth - b.depth }).depth
		var candidates, tagged []jsonField
		for _, f := range fields {
			if f.depth == shallowest {
				candidates = append(candidates, f)
				if f.tagged {
					tagged = append(tagged, f)
				}
			}
		}
		switch {
		case len(candidates) == 1:
			out = append(out, candidates[0])
		case len(tagged) == 1:
			out = append(out, tagged[0])
		}
	}
	slices.SortFunc(out, func(a, b jsonField) int { return slices.Compare(a.index, b.index) })
	return out
}

// schemaDocs are the doc comments and string constants of the package's source.
type schemaDocs struct {
	types      map[string]string            // type name -> doc comment
	fields     map[string]map[string]string // struct type -> field -> doc or line comment
	underlying map[string]string            // "type A B" -> A: B, whose fields A has
	enums      map[string][]any             // string type -> its typed constants, in source order
}

func loadSchemaDocs() (schemaDocs, error) {
	d := schemaDocs{types: map[string]string{}, fields: map[string]map[string]string{},
		underlying: map[string]string{}, enums: map[string][]any{}}
	files, err := filepath.Glob("*.go")
	if err != nil {
		return d, err
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			return d, err
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, spec := range gd.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					doc := s.Doc
					if doc == nil && len(gd.Specs) == 1 {
						doc = gd.Doc
					}
					d.types[s.Name.Name] = commentText(doc)
					switch st := s.Type.(type) {
					case *ast.Ident:
						d.underlying[s.Name.Name] = st.Name
					case *ast.StructType:
						fields := map[string]string{}
						for _, field := range st.Fields.List {
							text := commentText(field.Doc)
							if text == "" {
								text = commentText(field.Comment)
							}
							for _, n := range field.Names {
								fields[n.Name] = text
							}
						}
						d.fields[s.Name.Name] = fields
					}
				case *ast.ValueSpec:
					typ, ok := s.Type.(*ast.Ident)
					if gd.Tok != token.CONST || !ok {
						continue
					}
					for _, v := range s.Values {
						if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
							if value, err := strconv.Unquote(lit.Value); err == nil {
								d.enums[typ.Name] = append(d.enums[typ.Name], value)
							}
						}
					}
				}
			}
		}
	}
	return d, nil
}

func commentText(g *ast.CommentGroup) string {
	if g == nil {
		return ""
	}
	return strings.Join(strings.Fields(g.Text()), " ")
}

func (d schemaDocs) typeDoc(t reflect.Type) string {
	if t.PkgPath() != domainPackage || t.Name() == "" {
		return ""
	}
	return d.types[t.Name()]
}

func (d schemaDocs) fieldDoc(owner reflect.Type, field string) string {
	if owner.PkgPath() != domainPackage {
		return ""
	}
	for name, hops := owner.Name(), 0; name != "" && hops < 10; name, hops = d.underlying[name], hops+1 {
		if text := d.fields[name][field]; text != "" {
			return text
		}
	}
	return ""
}

func (d schemaDocs) enumOf(t reflect.Type) []any {
	if t.PkgPath() != domainPackage || t.Name() == "" {
		return nil
	}
	return slices.Clone(d.enums[t.Name()])
}

// schemaBreaks lists the changes from the old schema to the new one that a document
// valid under the old one could fail: a removed or retyped property, a new required
// one, a narrower enum. Descriptions and titles may change freely.
func schemaBreaks(oldFile, newFile []byte) ([]string, error) {
	var before, after any
	if err := json.Unmarshal(oldFile, &before); err != nil {
		return nil, fmt.Errorf("the file on disk is not JSON: %w", err)
	}
	if err := json.Unmarshal(newFile, &after); err != nil {
		return nil, err
	}
	var problems []string
	compareSchemas(before, after, "$", &problems)
	return problems, nil
}

func compareSchemas(before, after any, path string, problems *[]string) {
	b, bok := before.(map[string]any)
	a, aok := after.(map[string]any)
	if !bok || !aok {
		if !reflect.DeepEqual(before, after) {
			*problems = append(*problems, fmt.Sprintf("%s changed from %v to %v", path, before, after))
		}
		return
	}
	annotations := map[string]bool{"$schema": true, "title": true, "description": true, "$comment": true}
	for _, k := range slices.Sorted(mapKeys(mergeKeys(a, b))) {
		bv, inBefore := b[k]
		av, inAfter := a[k]
		switch {
		case annotations[k]:
		case k == "properties":
			bp, _ := bv.(map[string]any)
			ap, _ := av.(map[string]any)
			for _, name := range slices.Sorted(mapKeys(bp)) {
				if _, ok := ap[name]; !ok {
					*problems = append(*problems, fmt.Sprintf("%s.%s was removed", path, name))
					continue
				}
				compareSchemas(bp[name], ap[name], path+"."+name, problems)
			}
		case k == "required":
			bs, _ := bv.([]any)
			as, _ := av.([]any)
			for _, name := range as {
				if !slices.Contains(bs, name) {
					*problems = append(*problems, fmt.Sprintf("%s.%v became required", path, name))
				}
			}
		case k == "enum":
			bs, _ := bv.([]any)
			as, _ := av.([]any)
			for _, v := range bs {
				if inAfter && !slices.ContainsFunc(as, func(x any) bool { return reflect.DeepEqual(x, v) }) {
					*problems = append(*problems, fmt.Sprintf("%s no longer allows %v", path, v))
				}
			}
			if !inAfter {
				continue
			}
			if !inBefore {
				*problems = append(*problems, fmt.Sprintf("%s now has an enum", path))
			}
		case !inBefore:
			*problems = append(*problems, fmt.Sprintf("%s gained %q: %v", path, k, av))
		case !inAfter:
			*problems = append(*problems, fmt.Sprintf("%s lost %q: %v", path, k, bv))
		default:
			compareSchemas(bv, av, path+" ("+k+")", problems)
		}
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func mergeKeys(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// sampleMode says what a sample must show: the zero value writes exactly the required
// properties, the full value exactly the listed ones.
type sampleMode string

const (
	zeroSample sampleMode = "zero"
	fullSample sampleMode = "full"
)

func roundTrip(t *testing.T, n schemaNode) map[string]any {
	t.Helper()
	b, err := encodeSchema(n)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// fullValue returns a value of t with every field set (one element per slice and map),
// string types with constants set to their first one.
func fullValue(t reflect.Type, docs schemaDocs) reflect.Value {
	v := reflect.New(t).Elem()
	fill(v, docs, 0)
	return v
}

func fill(v reflect.Value, docs schemaDocs, depth int) {
	if depth > 10 {
		return
	}
	switch v.Type() {
	case timeType:
		v.Set(reflect.ValueOf(time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)))
		return
	case rawMessageType:
		v.SetBytes([]byte(`{"k":1}`))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), docs, depth+1)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	case reflect.String:
		v.SetString("x")
		if values := docs.enumOf(v.Type()); len(values) > 0 {
			v.SetString(values[0].(string))
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), docs, depth+1)
	case reflect.Array:
		for i := range v.Len() {
			fill(v.Index(i), docs, depth+1)
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		key := reflect.New(v.Type().Key()).Elem()
		fill(key, docs, depth+1)
		elem := reflect.New(v.Type().Elem()).Elem()
		fill(elem, docs, depth+1)
		m.SetMapIndex(key, elem)
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			sf := v.Type().Field(i)
			if sf.Tag.Get("json") == "-" || !v.Field(i).CanSet() || sf.Type.Kind() == reflect.Interface {
				continue
			}
			fill(v.Field(i), docs, depth+1)
		}
	}
}

// checkSample validates a JSON document against the subset of JSON Schema the
// generator writes, and checks that its objects have exactly the properties the mode
// expects.
func checkSample(schema map[string]any, doc any, mode sampleMode, path string) []string {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, path+": "+fmt.Sprintf(format, args...))
	}
	if types, ok := schema["type"]; ok {
		allowed := []any{types}
		if list, ok := types.([]any); ok {
			allowed = list
		}
		if !slices.Contains(allowed, any(jsonKind(doc))) && !(jsonKind(doc) == "integer" && slices.Contains(allowed, any("number"))) {
			bad("%v is a %s, the schema says %v", doc, jsonKind(doc), types)
			return problems
		}
	}
	// A zero value need not be a valid event (an empty channel), only show its shape.
	if enum, ok := schema["enum"].([]any); ok && mode == fullSample && !slices.Contains(enum, doc) {
		bad("%v is not one of %v", doc, enum)
	}
	if schema["format"] == "date-time" {
		if s, ok := doc.(string); ok {
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				bad("%q is not a date-time", s)
			}
		}
	}
	if minimum, ok := schema["minimum"].(float64); ok {
		if f, ok := doc.(float64); ok && f < minimum {
			bad("%v is below %v", f, minimum)
		}
	}
	switch d := doc.(type) {
	case map[string]any:
		props, hasProps := schema["properties"].(map[string]any)
		var expected []any
		switch {
		case !hasProps:
		case mode == fullSample:
			for name := range props {
				expected = append(expected, name)
			}
		default:
			expected, _ = schema["required"].([]any)
		}
		if hasProps || schema["required"] != nil {
			for _, name := range expected {
				if _, ok := d[name.(string)]; !ok {
					bad("property %v is missing", name)
				}
			}
			for name := range d {
				if !slices.Contains(expected, any(name)) {
					bad("property %s is written but not expected in a %s sample", name, mode)
				}
			}
		}
		for name, value := range d {
			sub, ok := props[name].(map[string]any)
			if !ok {
				sub, ok = schema["additionalProperties"].(map[string]any)
			}
			if ok {
				problems = append(problems, checkSample(sub, value, mode, path+"."+name)...)
			}
		}
	case []any:
		if minItems, ok := schema["minItems"].(float64); ok && float64(len(d)) < minItems {
			bad("%d items, fewer than %v", len(d), minItems)
		}
		if maxItems, ok := schema["maxItems"].(float64); ok && float64(len(d)) > maxItems {
			bad("%d items, more than %v", len(d), maxItems)
		}
		if items, ok := schema["items"].(map[string]any); ok {
			for i, value := range d {
				problems = append(problems, checkSample(items, value, mode, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	}
	return problems
}

func jsonKind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if x == math.Trunc(x) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
