from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.parsing import single_parameter
from lessons import selectors
from lessons.api.serializers import (
    LessonDetailSerializer,
    LessonLinkSerializer,
    LessonSerializer,
    PaperSerializer,
    TopicSerializer,
)
from lessons.models import Lesson, Paper, Topic

CATALOGUE_PARAMETERS = [
    OpenApiParameter(
        "search", str, description="Words to find in title, summary or body."
    ),
    OpenApiParameter(
        "tag",
        str,
        many=True,
        description="Exact tag name; repeat it to require several tags.",
    ),
    OpenApiParameter("topic", str, description="Topic path; includes subtopics."),
    OpenApiParameter("depth", int, description="1 to 5."),
    OpenApiParameter("price", str, enum=["free", "paid"]),
]


@extend_schema(parameters=CATALOGUE_PARAMETERS)
class LessonListView(generics.ListAPIView[Lesson]):
    serializer_class = LessonSerializer

    def get_queryset(self) -> Any:
        filters = selectors.catalogue_filters(self.request.query_params)
        return selectors.lesson_catalogue(**filters)


class LessonDetailView(APIView):
    @extend_schema(responses=LessonDetailSerializer)
    def get(self, request: Request, slug: str) -> Response:
        lesson = selectors.lesson_get(slug=slug)
        return Response(LessonDetailSerializer(lesson).data)


PaperNodeSerializer = inline_serializer(
    "NeighbourhoodPaper",
    {
        "kind": serializers.CharField(),
        "arxiv_id": serializers.CharField(),
        "title": serializers.CharField(),
        "version": serializers.IntegerField(allow_null=True),
        "withdrawn": serializers.BooleanField(),
        "url": serializers.CharField(),
        "hop": serializers.IntegerField(),
    },
)

NeighbourhoodSerializer = inline_serializer(
    "Neighbourhood",
    {
        "center": serializers.CharField(),
        "depth": serializers.IntegerField(),
        # Lessons, then the papers they cite (kind "paper"), whose edges
        # have kind "cites" and target "arxiv:<id>".
        "nodes": PolymorphicProxySerializer(
            component_name="NeighbourhoodNode",
            serializers={"lesson": LessonLinkSerializer, "paper": PaperNodeSerializer},
            resource_type_field_name="kind",
            many=True,
        ),
        "edges": inline_serializer(
            "NeighbourhoodEdge",
            {
                "source": serializers.CharField(),
                "target": serializers.CharField(),
                "kind": serializers.CharField(),
                "note": serializers.CharField(),
            },
            many=True,
        ),
    },
)


class LessonNeighbourhoodView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("depth", OpenApiTypes.INT, description="1 to 3.")],
        responses=NeighbourhoodSerializer,
    )
    def get(self, request: Request, slug: str) -> Response:
        depth = selectors.neighbourhood_depth(
            single_parameter(request.query_params, "depth")
        )
        lesson = selectors.lesson_get(slug=slug)
        hood = selectors.lesson_neighbourhood(lesson=lesson, depth=depth)
        ordered = sorted(hood.hops.items(), key=lambda item: (item[1], item[0]))
        nodes: list[Any] = list(
            LessonLinkSerializer(
                [hood.lessons[pk] for pk, _ in ordered], many=True
            ).data
        )
        for node, (_pk, hop) in zip(nodes, ordered, strict=True):
            node["kind"] = "lesson"
            node["hop"] = hop
        nodes.extend(
            {
                "kind": "paper",
                "arxiv_id": paper.arxiv_id,
                "title": paper.title,
                "version": paper.version,
                "withdrawn": paper.withdrawn,
                "url": paper.get_absolute_url(),
                "hop": hood.paper_hops[paper.pk],
            }
            for paper in hood.papers()
        )
        slugs = {pk: hood.lessons[pk].slug for pk in hood.lessons}
        edges = [
            {
                "source": slugs[edge.source_id],
                "target": slugs[edge.target_id],
                "kind": edge.kind,
                "note": edge.note,
            }
            for edge in hood.edges
        ]
        edges.extend(
            {
                "source": slugs[citation.lesson_id],
                "target": f"arxiv:{citation.paper.arxiv_id}",
                "kind": "cites",
                "note": f"v{citation.cited_version}" if citation.cited_version else "",
            }
            for citation in hood.citations
        )
        return Response(
            {"center": lesson.slug, "depth": depth, "nodes": nodes, "edges": edges}
        )


class LessonPathView(APIView):
    @extend_schema(
        responses=inline_serializer(
            "LearningPath",
            {
                "lesson": serializers.CharField(),
                "steps": LessonLinkSerializer(many=True),
                "total": serializers.DictField(child=serializers.CharField()),
            },
        )
    )
    def get(self, request: Request, slug: str) -> Response:
        lesson = selectors.lesson_get(slug=slug)
        path = selectors.lesson_learning_path(lesson=lesson)
        return Response(
            {
                "lesson": lesson.slug,
                "steps": LessonLinkSerializer(path.steps, many=True).data,
                "total": path.totals(),
            }
        )


class TopicListView(generics.ListAPIView[Topic]):
    serializer_class = TopicSerializer
    pagination_class = None

    def get_queryset(self) -> Any:
        return selectors.topic_list()


class PaperListView(generics.ListAPIView[Paper]):
    serializer_class = PaperSerializer
    queryset = Paper.objects.order_by("arxiv_id")
