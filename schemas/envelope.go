package schemas

// decodeEnvelope reads the versioned envelope the way producers write it, without the
// reflection and buffering of encoding/json, which cost every join row about 5 µs (go test
// -bench JoinRoute ./bridge). It takes member names as written and strings without escapes,
// each member once, and fields whose members are numbers within float64's range or null,
// which is what checkFields asks of them; ok is false for anything else, fields missing
// among them, and the json decoder then reads the record, with its own rules and error
// messages.
// Whatever it accepts, it reads as the decoder does (FuzzDecodeEnvelope). value is valid
// UTF-8 (CheckRecord).
func decodeEnvelope(value []byte) (r JoinRow, ok bool) {
	var seen uint8
	i := skipSpace(value, 0)
	if i >= len(value) || value[i] != '{' {
		return r, false
	}
	i = skipSpace(value, i+1)
	if i < len(value) && value[i] == '}' {
		return r, false // no fields
	}
	for {
		name, next, found := plainString(value, i)
		if !found {
			return r, false
		}
		if i = skipSpace(value, next); i >= len(value) || value[i] != ':' {
			return r, false
		}
		i = skipSpace(value, i+1)
		var bit uint8
		switch string(name) {
		case "v":
			bit = 1
			if r.Version, i, found = smallInt(value, i); !found {
				return r, false
			}
		case "id":
			bit = 2
			var id []byte
			if id, i, found = plainString(value, i); !found {
				return r, false
			}
			r.EventID = string(id)
		case "created_at":
			bit = 4
			start := i
			if _, i, found = plainString(value, i); !found {
				return r, false
			}
			if r.CreatedAt.UnmarshalJSON(value[start:i]) != nil {
				return r, false
			}
		case "fields":
			bit = 8
			start := i
			if i, found = numberObject(value, i); !found {
				return r, false
			}
			r.Fields = append([]byte(nil), value[start:i]...)
		default:
			return r, false
		}
		if seen&bit != 0 {
			return r, false
		}
		seen |= bit
		if i = skipSpace(value, i); i >= len(value) {
			return r, false
		}
		switch value[i] {
		case ',':
			i = skipSpace(value, i+1)
		case '}':
			return r, seen&8 != 0 && skipSpace(value, i+1) == len(value)
		default:
			return r, false
		}
	}
}

// plainString returns the contents of the JSON string opening at b[i] and the index after
// it, if it has no escapes and no control characters.
func plainString(b []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, i, false
		}
	}
	return nil, i, false
}

// smallInt reads a JSON integer of at most nine digits at b[i].
func smallInt(b []byte, i int) (n, next int, ok bool) {
	j := i
	for j < len(b) && '0' <= b[j] && b[j] <= '9' && j-i < 10 {
		n = n*10 + int(b[j]-'0')
		j++
	}
	if j == i || j-i > 9 || b[i] == '0' && j-i > 1 {
		return 0, i, false
	}
	return n, j, true
}

// numberObject returns the index after the JSON object opening at b[i], if every member
// has a plain name and a value that is null or a number within float64's range.
func numberObject(b []byte, i int) (next int, ok bool) {
	if i >= len(b) || b[i] != '{' {
		return i, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		var found bool
		if _, i, found = plainString(b, i); !found {
			return i, false
		}
		if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
			return i, false
		}
		i = skipSpace(b, i+1)
		if len(b)-i >= 4 && string(b[i:i+4]) == "null" {
			i += 4
		} else {
			start := i
			if i, found = jsonNumber(b, i); !found || !inRange(b[start:i]) {
				return i, false
			}
		}
		if i = skipSpace(b, i); i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// jsonNumber returns the index after the JSON number at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func jsonNumber(b []byte, i int) (next int, ok bool) {
	digits := func(j int) int {
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		return j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(i)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return i, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return i, false
		}
		i = j
	}
	return i, true
}
