// Shows /v1/openapi.json: each operation with its parameters, body and answers.
'use strict';

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function schemaName(s) {
  if (!s) return '';
  if (s.$ref) return s.$ref.split('/').pop();
  if (s.type === 'array') return schemaName(s.items) + '[]';
  return Array.isArray(s.type) ? s.type.join(' | ') : (s.type || 'any');
}

fetch('/v1/openapi.json').then((r) => r.json()).then((doc) => {
  document.getElementById('title').textContent = `${doc.info.title} ${doc.info.version}`;
  document.getElementById('description').textContent = doc.info.description;
  const main = document.getElementById('operations');
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const sec = el('section');
      sec.id = `${method}-${path}`;
      sec.append(el('h2', `${method.toUpperCase()} ${path}`));
      if (op.description || op.summary) sec.append(el('p', op.description || op.summary, 'hint'));
      const list = el('dl', '', 'form');
      for (const p of op.parameters || []) {
        list.append(el('dt', `${p.name} (${p.in}${p.required ? ', required' : ''})`), el('dd', `${schemaName(p.schema)} — ${p.description || ''}`));
      }
      if (op.requestBody) {
        for (const [type, c] of Object.entries(op.requestBody.content || {})) {
          list.append(el('dt', 'body'), el('dd', `${type}: ${schemaName(c.schema)}`));
        }
      }
      for (const [status, r] of Object.entries(op.responses || {})) {
        const types = Object.keys(r.content || {}).join(', ');
        list.append(el('dt', status), el('dd', `${r.description}${types ? ' (' + types + ')' : ''}`));
      }
      sec.append(list);
      main.append(sec);
    }
  }
});
