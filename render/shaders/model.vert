#version 330
// Skinned positions and normals arrive already posed (model frame); the edge pass pushes each
// vertex out along its normal by u_edge (model units) × the vertex's edge scale.
uniform mat4 u_mvp;
uniform float u_edge;

in vec3 in_position;
in vec3 in_normal;
in vec2 in_uv;
in float in_edge_scale;
in float in_face;  // 1: part of the face, lit through its ramp (the RAMP variant)

out vec3 v_normal;
out vec2 v_uv;
flat out float v_face;

void main() {
    float len = length(in_normal);
    vec3 n = len > 0.0 ? in_normal / len : vec3(0.0, 0.0, 1.0);
    vec3 p = in_position + n * (u_edge * in_edge_scale);
    gl_Position = u_mvp * vec4(p, 1.0);
    v_normal = n;
    v_uv = in_uv;
    v_face = in_face;
}
